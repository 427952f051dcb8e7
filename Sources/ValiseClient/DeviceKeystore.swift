public import ValiseCrypto
import ValiseStore

/// The device keystore in a Valise home: `device.key`, encrypted under the staff member's
/// passphrase (format in docs/PROTOCOL.md, "Keystore").
public struct DeviceKeystore: Sendable {
    public let home: ValiseHome

    public init(home: ValiseHome) {
        self.home = home
    }

    public var path: String { home.deviceKeyPath }

    /// Whether a keystore file (valid or not) is present.
    public var exists: Bool { SecureFile.exists(path) }

    /// What `create` did.
    public struct Created: Sendable {
        public let identity: DeviceIdentity
        /// Where the replaced keystore was kept, when `force` replaced one.
        public let backupPath: String?
    }

    /// Makes a new device for `memberName` and writes its keystore.
    ///
    /// Refuses if a keystore exists, unless `force`, which keeps the old file beside the new
    /// one as `device.key.backup-<time>`.
    public func create(
        memberName: MemberName, passphrase: SecretBytes, parameters: PasswordKDFParameters,
        force: Bool, now: UInt64
    ) throws(ClientError) -> Created {
        try home.prepare()
        let lock = try home.lock()
        defer { withExtendedLifetime(lock) {} }
        if exists && !force {
            throw ClientError(
                kind: .usage, code: "device-exists",
                message: "a device keystore already exists at \(path); use --force to replace it (the old file is kept as a backup)"
            )
        }
        let identity = DeviceIdentity.generate(memberName: memberName, now: now)
        let backup = try write(identity, passphrase: passphrase, parameters: parameters, backupSuffix: force ? ".backup-\(Timestamp.compact(now))" : nil)
        return Created(identity: identity, backupPath: backup)
    }

    /// Reads the header without unlocking: the contents type and KDF parameters.
    public func inspect() throws(ClientError) -> KeystoreFile {
        let bytes = try readFile()
        do {
            return try KeystoreFile(parsing: bytes)
        } catch {
            throw ClientError(error, path: path)
        }
    }

    /// Unlocks the keystore. A wrong passphrase or a damaged file changes nothing on disk.
    public func unlock(passphrase: SecretBytes) throws(ClientError) -> (identity: DeviceIdentity, file: KeystoreFile) {
        let file = try inspect()
        do {
            let payload = try file.open(passphrase: passphrase, expecting: .device)
            return (try DeviceIdentity(payload: payload), file)
        } catch {
            throw ClientError(error, path: path)
        }
    }

    /// Re-encrypts the keystore under `newPassphrase` (and `parameters`). The old file stays
    /// in place until the new one is written, flushed and read back; then a rename replaces
    /// it in one step. No copy under the old passphrase is kept.
    public func changePassphrase(
        from oldPassphrase: SecretBytes, to newPassphrase: SecretBytes, parameters: PasswordKDFParameters
    ) throws(ClientError) -> DeviceIdentity {
        let lock = try home.lock()
        defer { withExtendedLifetime(lock) {} }
        let (identity, _) = try unlock(passphrase: oldPassphrase)
        _ = try write(identity, passphrase: newPassphrase, parameters: parameters, backupSuffix: nil)
        return identity
    }

    private func write(
        _ identity: DeviceIdentity, passphrase: SecretBytes, parameters: PasswordKDFParameters, backupSuffix: String?
    ) throws(ClientError) -> String? {
        let payload = identity.encodePayload()
        let sealed: (bytes: [UInt8], key: SymmetricKey)
        do {
            sealed = try KeystoreFile.seal(payload, contents: .device, passphrase: passphrase, parameters: parameters)
        } catch {
            throw ClientError(error, path: path)
        }
        do {
            // Read back what the disk returns and decrypt it with the same key before the
            // old file is replaced.
            return try SecureFile.writeAtomically(sealed.bytes, to: path, backupSuffix: backupSuffix) { written in
                guard let reopened = try? KeystoreFile(parsing: written).open(with: sealed.key, expecting: .device) else {
                    return false
                }
                return reopened.constantTimeEquals(payload)
            }
        } catch {
            throw ClientError(error)
        }
    }

    private func readFile() throws(ClientError) -> [UInt8] {
        do {
            return try SecureFile.read(path, maximumByteCount: KeystoreFile.maximumByteCount)
        } catch where error.code == "not-found" {
            throw ClientError(
                kind: .notSetUp, code: "no-device",
                message: "no device keystore at \(path); create one with: valise init --name NAME@MISSION"
            )
        } catch where error.code == "too-large" {
            throw ClientError(KeystoreError.tooLarge, path: path)
        } catch {
            throw ClientError(error)
        }
    }
}
