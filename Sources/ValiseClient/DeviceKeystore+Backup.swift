public import ValiseCrypto
public import ValiseDirectory
import ValiseStore

extension DeviceKeystore {
    /// Writes a backup of the device's current identity and transport keys to `path` (which
    /// must not exist), under `backupPassphrase`. With `directory`, the keystore is first
    /// brought in line with it, so that a rotation the directory already shows is backed up.
    public func exportBackup(
        passphrase: SecretBytes, directory: DirectoryState?, to path: String, backupPassphrase: SecretBytes,
        parameters: PasswordKDFParameters, now: UInt64
    ) throws(ClientError) -> DeviceKeyBackup {
        let backupFile = DeviceKeyBackup.file(at: path)
        guard !backupFile.exists else {
            throw ClientError(kind: .usage, code: "backup-exists", message: "\(path) exists already; choose another file")
        }
        let (identity, _, _) = try unlock(passphrase: passphrase, directory: directory, now: now)
        let backup = DeviceKeyBackup(memberName: identity.memberName, exportedAt: now, keys: identity.current)
        try backupFile.write(backup, passphrase: backupPassphrase, parameters: parameters)
        return backup
    }

    /// What `restore` did.
    public struct Restored: Sendable {
        public let identity: DeviceIdentity
        /// Signed by the backed-up identity key and by the new one.
        public let request: MemberRequest
        /// The fingerprint of the backed-up key, which the request replaces.
        public let oldFingerprint: Fingerprint
        /// Where the replaced keystore was kept, when `force` replaced one.
        public let backupPath: String?
    }

    /// Makes a new device from a backup: new identity and transport keys, and a rotation
    /// request from the backed-up keys to them, countersigned by the backed-up identity key.
    /// The backed-up keys sign that request and nothing else; they are not kept, so one key
    /// never lives on two devices: the new device is admitted once an admin applies the
    /// request, and the old device's keys no longer are.
    public func restore(
        from backup: DeviceKeyBackup, passphrase: SecretBytes, parameters: PasswordKDFParameters, force: Bool, now: UInt64
    ) throws(ClientError) -> Restored {
        let identity = DeviceIdentity.generate(memberName: backup.memberName, now: now)
        let request = MemberRequest.rotation(
            member: backup.memberName, oldIdentityKey: backup.keys.identity, newIdentityKey: identity.identityKey,
            newTransportKey: identity.transportKey.publicKey, created: now)
        let kept = try writeNew(identity, passphrase: passphrase, parameters: parameters, force: force, now: now)
        return Restored(identity: identity, request: request, oldFingerprint: backup.fingerprint, backupPath: kept)
    }
}
