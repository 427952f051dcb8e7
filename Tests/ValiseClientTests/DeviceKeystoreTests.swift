import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseClient
import ValiseDirectory
import ValiseCrypto
import ValiseStore

@Suite("Device keystore")
struct DeviceKeystoreTests {
    let directory = TemporaryDirectory()
    var home: ValiseHome { ValiseHome(path: directory.file("home")) }
    let passphrase = SecretBytes(copying: Array("correct horse battery staple".utf8))
    let alice = try! MemberName("alice@jakarta")

    func bytes(_ path: String) throws -> [UInt8] { try SecureFile.read(path, maximumByteCount: 65_536) }

    @Test("create then unlock returns the same keys; the home is private")
    func createAndUnlock() throws {
        let keystore = DeviceKeystore(home: home)
        let created = try keystore.create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: false, now: 1_795_000_000)
        #expect(created.backupPath == nil)
        #expect(mode(of: home.path) == 0o700)
        #expect(mode(of: keystore.path) == 0o600)

        let (identity, file) = try keystore.unlock(passphrase: passphrase)
        #expect(identity.memberName == alice)
        #expect(identity.createdAt == 1_795_000_000)
        #expect(identity.identityKey.publicKey == created.identity.identityKey.publicKey)
        #expect(identity.transportKey.publicKey == created.identity.transportKey.publicKey)
        #expect(identity.fingerprint == created.identity.fingerprint)
        #expect(file.parameters == .insecureTest)
    }

    @Test("a wrong passphrase fails and leaves the file byte for byte unchanged")
    func wrongPassphrase() throws {
        let keystore = DeviceKeystore(home: home)
        _ = try keystore.create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: false, now: 0)
        let before = try bytes(keystore.path)
        let error = #expect(throws: ClientError.self) {
            try keystore.unlock(passphrase: SecretBytes(copying: Array("wrong horse battery staple".utf8)))
        }
        #expect(error?.kind == .wrongPassphrase)
        #expect(error?.message == "wrong passphrase for \(keystore.path)")
        #expect(try bytes(keystore.path) == before)
    }

    @Test("an existing device is kept unless forced; forcing keeps a backup")
    func existingDevice() throws {
        let keystore = DeviceKeystore(home: home)
        let first = try keystore.create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: false, now: 1_795_000_000)
        let original = try bytes(keystore.path)
        let error = #expect(throws: ClientError.self) {
            try keystore.create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: false, now: 0)
        }
        #expect(error?.code == "device-exists")
        #expect(try bytes(keystore.path) == original)

        let second = try keystore.create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: true, now: 1_795_000_100)
        let backup = try #require(second.backupPath)
        #expect(backup == keystore.path + ".backup-20261118T110820Z")
        #expect(try bytes(backup) == original)
        #expect(second.identity.identityKey.publicKey != first.identity.identityKey.publicKey)
    }

    @Test("a damaged keystore is reported and never rewritten", arguments: ["truncate", "flip", "garbage", "empty"])
    func damaged(_ damage: String) throws {
        let keystore = DeviceKeystore(home: home)
        _ = try keystore.create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: false, now: 0)
        var damagedBytes = try bytes(keystore.path)
        switch damage {
        case "truncate": damagedBytes.removeLast(40)
        case "flip": damagedBytes[100] ^= 0x40
        case "garbage": damagedBytes = Array("this is not a keystore".utf8)
        default: damagedBytes = []
        }
        try SecureFile.writeAtomically(damagedBytes, to: keystore.path)
        let error = #expect(throws: ClientError.self) { try keystore.unlock(passphrase: passphrase) }
        #expect(error?.kind == .damaged)
        #expect(error?.message.hasPrefix(keystore.path) == true)
        #expect(throws: ClientError.self) {
            try keystore.changePassphrase(from: passphrase, to: SecretBytes(copying: Array("a brand new passphrase".utf8)), parameters: .insecureTest)
        }
        #expect(try bytes(keystore.path) == damagedBytes)
    }

    @Test("changing the passphrase re-encrypts the same keys; the old passphrase stops working")
    func changePassphrase() throws {
        let keystore = DeviceKeystore(home: home)
        let created = try keystore.create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: false, now: 0)
        let newPassphrase = SecretBytes(copying: Array("a brand new passphrase".utf8))
        _ = try keystore.changePassphrase(from: passphrase, to: newPassphrase, parameters: .insecureTest)
        #expect(try keystore.unlock(passphrase: newPassphrase).identity.identityKey.publicKey == created.identity.identityKey.publicKey)
        let error = #expect(throws: ClientError.self) { try keystore.unlock(passphrase: passphrase) }
        #expect(error?.kind == .wrongPassphrase)

        // A wrong current passphrase changes nothing.
        let before = try bytes(keystore.path)
        #expect(throws: ClientError.self) { try keystore.changePassphrase(from: passphrase, to: passphrase, parameters: .insecureTest) }
        #expect(try bytes(keystore.path) == before)
    }

    @Test("no keystore: a clear 'not set up' error naming the command to run")
    func missing() {
        let error = #expect(throws: ClientError.self) { try DeviceKeystore(home: home).unlock(passphrase: passphrase) }
        #expect(error?.kind == .notSetUp)
        #expect(error?.message.contains("valise init") == true)
    }

    @Test("a keystore for another purpose is refused")
    func wrongContents() throws {
        try home.prepare()
        let sealed = try KeystoreFile.seal(SecretBytes(copying: [1]), contents: .admin, passphrase: passphrase, parameters: .insecureTest)
        try SecureFile.writeAtomically(sealed.bytes, to: home.deviceKeyPath)
        let error = #expect(throws: ClientError.self) { try DeviceKeystore(home: home).unlock(passphrase: passphrase) }
        #expect(error?.code == "wrong-contents")
    }

    @Test("home resolution: flag, then VALISE_HOME, then ~/.valise")
    func homeResolution() throws {
        #expect(try ValiseHome.resolve(flag: "/a/", environment: ["VALISE_HOME": "/b", "HOME": "/c"]).path == "/a")
        #expect(try ValiseHome.resolve(flag: nil, environment: ["VALISE_HOME": "/b", "HOME": "/c"]).path == "/b")
        #expect(try ValiseHome.resolve(flag: nil, environment: ["HOME": "/c"]).path == "/c/.valise")
        #expect(throws: ClientError.self) { try ValiseHome.resolve(flag: nil, environment: [:]) }
        // An empty --home (an unset shell variable) is a mistake, not "use the default".
        let empty = #expect(throws: ClientError.self) { try ValiseHome.resolve(flag: "", environment: ["HOME": "/c"]) }
        #expect(empty?.kind == .usage)
    }

    @Test("a home that other users can write is refused before the keystore is rewritten")
    func sharedHome() throws {
        let keystore = DeviceKeystore(home: home)
        _ = try keystore.create(memberName: alice, passphrase: passphrase, parameters: .insecureTest, force: false, now: 0)
        chmod(home.path, 0o777)
        let error = #expect(throws: ClientError.self) {
            try keystore.changePassphrase(from: passphrase, to: SecretBytes(copying: Array("another passphrase".utf8)), parameters: .insecureTest)
        }
        #expect(error?.code == "insecure-permissions")
        #expect(throws: ClientError.self) { try keystore.unlock(passphrase: passphrase, directory: nil, now: 0) }
    }

    @Test("timestamps", arguments: [(UInt64(0), "1970-01-01T00:00:00Z"), (951_782_400, "2000-02-29T00:00:00Z"), (1_795_000_100, "2026-11-18T11:08:20Z")])
    func timestamps(seconds: UInt64, text: String) {
        #expect(Timestamp.rfc3339(seconds) == text)
    }
}
