import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseTestSupport

/// Key backups (issue 18): `valise keys export`, `valise init --from-backup`, and the admin
/// key backup, with the real `valise` and `valised`.
@Suite("Key backups (real valise and valised)", .serialized)
struct KeyBackupTests {
    /// An organisation without a relay, for the admin key commands.
    final class AdminWorld: OrganisationWorld {
        let directory = TemporaryDirectory()
    }

    static let backupPassphrase = "a separate backup passphrase"

    /// Writes `text` to a passphrase file (mode 0600) in `world` and returns its path.
    static func passphraseFile(_ world: some OrganisationWorld, _ name: String, _ text: String) throws -> String {
        let path = world.path(name)
        try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    /// A copy of `file` with `edit` applied, written beside it.
    static func altered(_ world: some OrganisationWorld, _ file: String, _ name: String, _ edit: (inout [UInt8]) -> Void) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        edit(&bytes)
        let path = world.path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    @Test("a device backup holds the two keys only; a new device made from it is admitted once an admin applies its request, and the old device no longer is")
    func deviceBackup() throws {
        let world = try RelayWorld(members: ["alice@jakarta", "bob@jakarta", "carol@nairobi"])
        let (alice, bob, carol) = ("alice@jakarta", "bob@jakarta", "carol@nairobi")
        for member in [alice, bob, carol] { _ = try world.sync(member) }
        // Bob writes to alice before she loses her device, and she reads it there.
        try world.valise(["send", "--to", alice, "before the loss", "--home", world.path(bob), "--relay", world.relay.address])
        #expect(try world.json(world.sync(alice))["received"] as? Int == 1)
        let good = try Self.passphraseFile(world, "backup.pass", Self.backupPassphrase)
        let wrong = try Self.passphraseFile(world, "wrong.pass", "not the backup passphrase")
        let backup = world.path("alice.backup")
        let oldFingerprint = try world.fingerprint(alice)
        let oldKeys = try world.deviceIdentity(alice).current

        let exported = try world.json(world.valise(
            ["keys", "export", "--home", world.path(alice), "--out", backup, "--backup-passphrase-file", good, "--json"] + world.insecure))
        #expect(exported["fingerprint"] as? String == oldFingerprint)
        #expect(mode(of: backup) == 0o600)
        let again = try world.valise(["keys", "export", "--home", world.path(alice), "--out", backup, "--backup-passphrase-file", good], expect: 64)
        #expect(again.stderr.contains("exists already"), "\(again.stderr)")

        // What the file holds: the identity and transport keys, nothing else.
        let container = try KeystoreFile(parsing: [UInt8](try Data(contentsOf: URL(fileURLWithPath: backup))))
        #expect(container.contents == .deviceBackup)
        let payload = try container.open(passphrase: SecretBytes(copying: Array(Self.backupPassphrase.utf8)), expecting: .deviceBackup)
        #expect(payload.count == 1 + 2 + alice.utf8.count + 8 + 32 + 32)
        let decoded = try DeviceKeyBackup(payload: payload)
        #expect(decoded.memberName.value == alice)
        #expect(decoded.keys.identity.publicKey == oldKeys.identity.publicKey)
        #expect(decoded.keys.transport.publicKey == oldKeys.transport.publicKey)

        // Refusals leave the new home without a keystore.
        let restore = ["init", "--from-backup", backup, "--home", world.path("alice-new")] + world.insecure
        let wrongPassphrase = try world.valise(restore + ["--backup-passphrase-file", wrong], expect: 2)
        #expect(wrongPassphrase.stderr.contains("wrong passphrase"), "\(wrongPassphrase.stderr)")
        let tampered = try Self.altered(world, backup, "tampered.backup") { $0[100] ^= 1 }
        try world.valise(["init", "--from-backup", tampered, "--home", world.path("alice-new"), "--backup-passphrase-file", good] + world.insecure, expect: 3)
        let truncated = try Self.altered(world, backup, "truncated.backup") { $0.removeLast(10) }
        try world.valise(["init", "--from-backup", truncated, "--home", world.path("alice-new"), "--backup-passphrase-file", good] + world.insecure, expect: 3)
        let wrongKind = try world.valise(
            ["init", "--from-backup", world.path("\(bob)/device.key"), "--home", world.path("alice-new"), "--backup-passphrase-file", good] + world.insecure,
            expect: 1)
        #expect(wrongKind.stderr.contains("device key backup"), "\(wrongKind.stderr)")
        let otherName = try world.valise(restore + ["--backup-passphrase-file", good, "--name", bob], expect: 64)
        #expect(otherName.stderr.contains("holds the keys of alice@jakarta"), "\(otherName.stderr)")
        #expect(!FileManager.default.fileExists(atPath: world.path("alice-new/device.key")))

        // The new device: new keys, a rotation request countersigned by the backed-up key.
        let restored = try world.json(world.valise(restore + ["--backup-passphrase-file", good, "--json"]))
        #expect(restored["oldFingerprint"] as? String == oldFingerprint)
        try world.valise(["init", "--home", world.path("alice-new"), "--org-bundle", world.path("org.bundle")])
        let requestPath = try #require(restored["request"] as? String)
        #expect(requestPath == world.path("alice-new/rotation.request"))
        let newFingerprint = try world.fingerprint("alice-new")
        #expect(newFingerprint != oldFingerprint)
        let newIdentity = try world.deviceIdentity("alice-new")
        #expect(newIdentity.memberName.value == alice)
        #expect(newIdentity.pending == nil && newIdentity.retired.isEmpty, "the backed-up keys are not kept")
        #expect(newIdentity.identityKey.publicKey != oldKeys.identity.publicKey)
        let requestText = try String(contentsOfFile: requestPath, encoding: .utf8)
        #expect(requestText.hasPrefix("-----BEGIN VALISE ROTATION REQUEST-----\n"))
        let request = try RequestFile.read(requestPath)
        #expect(request.oldIdentityKey == oldKeys.identity.publicKey && request.identityKey == newIdentity.identityKey.publicKey)

        // Not admitted before the rotation is applied; admitted after, and the old device not.
        try world.valise(["sync", "--home", world.path("alice-new"), "--relay", world.relay.address], expect: 5)
        try world.valise(["admin", "rotate", alice, requestPath, "--expect-fingerprint", newFingerprint] + world.org)
        try world.valise(["admin", "publish", "--relay", "hq", "--relay-address", world.relay.address] + world.org)
        try world.valise(["sync", "--home", world.path("alice-new"), "--relay", world.relay.address])
        try world.valise(["sync", "--home", world.path(alice), "--relay", world.relay.address], expect: 5)

        // The new device receives what is sent to the member. (Bob already took one of
        // alice's one-time prekeys this hour, so his new session starts on her new device's
        // last-resort KEM prekey.)
        let sent = try world.valise(["send", "--to", alice, "after the restore", "--home", world.path(bob), "--relay", world.relay.address])
        let received = try world.json(world.valise(["sync", "--home", world.path("alice-new"), "--relay", world.relay.address, "--json"]))
        #expect(received["received"] as? Int == 1, "\(sent.stdout) \(sent.stderr) \(received)")

        // A sender who has not fetched alice's prekeys this hour gets one of the new device's
        // one-time prekeys: the rotation deleted those her lost device uploaded.
        let fresh = try world.valise(["send", "--to", alice, "first contact", "--home", world.path(carol), "--relay", world.relay.address])
        #expect(!fresh.stderr.contains("not signed by their identity key"), "\(fresh.stderr)")
        let first = try world.json(world.valise(["sync", "--home", world.path("alice-new"), "--relay", world.relay.address, "--json"]))
        #expect(first["received"] as? Int == 1, "\(fresh.stderr) \(first)")
    }

    @Test("an admin key backup restores the same key, under a new passphrase, and the restored key signs entries")
    func adminBackup() throws {
        let world = AdminWorld()
        try world.valise(["admin", "init", "--name", "Ministry", "--admin-name", "registrar"] + world.org + world.insecure)
        let good = try Self.passphraseFile(world, "backup.pass", Self.backupPassphrase)
        let wrong = try Self.passphraseFile(world, "wrong.pass", "not the backup passphrase")
        let backup = world.path("admin.backup")
        let exported = try world.json(world.valise(
            ["admin", "keys", "export", "--out", backup, "--backup-passphrase-file", good, "--json"] + world.org + world.insecure))
        let fingerprint = try #require(exported["fingerprint"] as? String)
        #expect(mode(of: backup) == 0o600)

        let restore = ["admin", "keys", "restore", backup, "--out", world.path("restored")] + world.insecure
        try world.valise(restore + ["--backup-passphrase-file", wrong], expect: 2)
        let tampered = try Self.altered(world, backup, "tampered.backup") { $0[$0.count - 40] ^= 0x80 }
        try world.valise(["admin", "keys", "restore", tampered, "--out", world.path("restored"), "--backup-passphrase-file", good], expect: 3)
        // A live admin.key is not a backup, and the other way round.
        try world.valise(["admin", "keys", "restore", world.path("org/admin.key"), "--out", world.path("restored"), "--backup-passphrase-file", good], expect: 1)
        #expect(!FileManager.default.fileExists(atPath: world.path("restored/admin.key")))

        let restored = try world.json(world.valise(restore + ["--backup-passphrase-file", good, "--json"]))
        #expect(restored["fingerprint"] as? String == fingerprint)
        let original = try Data(contentsOf: URL(fileURLWithPath: world.path("org/admin.pub")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: world.path("restored/admin.pub"))) == original, "the same key, the same public file")
        #expect(String(decoding: original, as: UTF8.self).hasPrefix("-----BEGIN VALISE ADMIN PUBLIC KEY-----\n"))
        try world.valise(restore + ["--backup-passphrase-file", good], expect: 64)

        // The restored key signs: it enrolls a device.
        try world.valise(["init", "--name", "dan@jakarta", "--home", world.path("dan")] + world.insecure)
        try world.valise(["admin", "enroll", world.path("dan/enrollment.request"), "--expect-fingerprint", try world.fingerprint("dan"),
                          "--key", world.path("restored")] + world.org)
    }
}
