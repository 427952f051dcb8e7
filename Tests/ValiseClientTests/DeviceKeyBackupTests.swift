import Testing
import ValiseTestSupport
@testable import ValiseClient
import ValiseDirectory
import ValiseCrypto
import ValiseStore

@Suite("Key backups")
struct DeviceKeyBackupTests {
    let directory = TemporaryDirectory()
    var home: ValiseHome { ValiseHome(path: directory.file("home")) }
    var newHome: ValiseHome { ValiseHome(path: directory.file("new-home")) }
    let passphrase = SecretBytes(copying: Array("correct horse battery staple".utf8))
    let backupPassphrase = SecretBytes(copying: Array("a separate backup passphrase".utf8))
    let alice = try! MemberName("alice@jakarta")
    let now: UInt64 = 1_795_000_000

    @Test("a backup holds the current keys only, never pending or retired ones nor the store key")
    func exportHoldsCurrentKeysOnly() throws {
        let keystore = DeviceKeystore(home: home)
        let created = try keystore.create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: false, now: now)
        _ = try keystore.startRotation(passphrase: passphrase, now: now + 10)
        let path = directory.file("alice.backup")
        let backup = try keystore.exportBackup(
            passphrase: passphrase, directory: nil, to: path, backupPassphrase: backupPassphrase, parameters: .insecureTest, now: now + 20)
        #expect(backup.keys.identity.publicKey == created.identity.identityKey.publicKey)
        #expect(backup.exportedAt == now + 20)
        #expect(mode(of: path) == 0o600)
        let (opened, header) = try DeviceKeyBackup.file(at: path).unlock(passphrase: backupPassphrase)
        #expect(header.contents == .deviceBackup)
        #expect(opened.keys.transport.publicKey == created.identity.transportKey.publicKey)
        #expect(opened.encodePayload().count == 1 + 2 + alice.value.utf8.count + 8 + 64)
        // Not over an existing file, and never with the keystore's passphrase by mistake.
        #expect(throws: ClientError.self) {
            try keystore.exportBackup(passphrase: passphrase, directory: nil, to: path, backupPassphrase: backupPassphrase, parameters: .insecureTest, now: now)
        }
        #expect(throws: ClientError.self) { try DeviceKeyBackup.file(at: path).unlock(passphrase: passphrase) }
    }

    @Test("a device restored from a backup has new keys only and a rotation request signed by both")
    func restore() throws {
        let original = try DeviceKeystore(home: home).create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: false, now: now).identity
        let backup = DeviceKeyBackup(memberName: alice, exportedAt: now, keys: original.current)
        let keystore = DeviceKeystore(home: newHome)
        let restored = try keystore.restore(from: backup, passphrase: passphrase, parameters: .insecureTest, force: false, now: now + 60)
        #expect(restored.request.kind == .rotation && restored.request.isValid)
        #expect(restored.request.oldIdentityKey == original.identityKey.publicKey)
        #expect(restored.request.identityKey == restored.identity.identityKey.publicKey)
        #expect(restored.oldFingerprint == original.fingerprint)
        let (saved, _) = try keystore.unlock(passphrase: passphrase)
        #expect(saved.identityKey.publicKey != original.identityKey.publicKey)
        #expect(saved.transportKey.publicKey != original.transportKey.publicKey)
        #expect(saved.pending == nil && saved.retired.isEmpty)
        // An existing keystore is kept unless forced.
        let before = try SecureFile.read(keystore.path, maximumByteCount: 65_536)
        #expect(throws: ClientError.self) { try keystore.restore(from: backup, passphrase: passphrase, parameters: .insecureTest, force: false, now: now) }
        #expect(try SecureFile.read(keystore.path, maximumByteCount: 65_536) == before)
    }

    @Test("a backup payload of another version, with bytes left over or a bad name is refused")
    func payloadRefusals() throws {
        let valid = DeviceKeyBackup(memberName: alice, exportedAt: now, keys: .generate()).encodePayload().withUnsafeBytes { [UInt8]($0) }
        func refused(_ bytes: [UInt8]) -> Bool {
            (try? DeviceKeyBackup(payload: SecretBytes(copying: bytes))) == nil
        }
        #expect(!refused(valid))
        #expect(refused([2] + valid.dropFirst()))
        #expect(refused(valid + [0]))
        #expect(refused(Array(valid.dropLast())))
        var badName = valid
        badName[3] = UInt8(ascii: "A")
        #expect(refused(badName))
    }

    @Test("an admin backup and a live admin key are not taken for each other")
    func adminContents() throws {
        let keys = AdminKeys.generate(name: "registrar", now: now)
        let sealed = try KeystoreFile.seal(AdminKeyBackup(keys: keys).encodePayload(), contents: .adminBackup, passphrase: backupPassphrase, parameters: .insecureTest)
        let file = try KeystoreFile(parsing: sealed.bytes)
        #expect(throws: KeystoreError.self) { try file.open(passphrase: backupPassphrase, expecting: .admin) }
        let reopened = try AdminKeyBackup(payload: file.open(passphrase: backupPassphrase, expecting: .adminBackup))
        #expect(reopened.keys.record == keys.record)
    }
}
