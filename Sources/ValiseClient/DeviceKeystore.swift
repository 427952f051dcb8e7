public import ValiseCrypto
public import ValiseDirectory
import ValiseStore

/// The device keystore in a Valise home: `device.key`, encrypted under the staff member's
/// passphrase (format in docs/PROTOCOL.md, "Keystore").
public struct DeviceKeystore: Sendable {
    public let home: ValiseHome
    let file: ClientKeyFile<DeviceIdentity>

    public init(home: ValiseHome) {
        self.home = home
        self.file = ClientKeyFile(path: home.deviceKeyPath, missingHint: "create one with: valise init --name NAME@MISSION")
    }

    public var path: String { file.path }

    /// Whether a keystore file (valid or not) is present.
    public var exists: Bool { file.exists }

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
        let identity = DeviceIdentity.generate(memberName: memberName, now: now)
        let backup = try writeNew(identity, passphrase: passphrase, parameters: parameters, force: force, now: now)
        return Created(identity: identity, backupPath: backup)
    }

    /// Writes the keystore of a new device, refusing to replace one unless `force`. Returns
    /// where the replaced file was kept.
    func writeNew(
        _ identity: DeviceIdentity, passphrase: SecretBytes, parameters: PasswordKDFParameters, force: Bool, now: UInt64
    ) throws(ClientError) -> String? {
        try home.prepare()
        let lock = try home.lock()
        defer { withExtendedLifetime(lock) {} }
        if exists && !force {
            throw ClientError(
                kind: .usage, code: "device-exists",
                message: "a device keystore already exists at \(path); use --force to replace it (the old file is kept as a backup)"
            )
        }
        return try file.write(
            identity, passphrase: passphrase, parameters: parameters,
            backupSuffix: force ? ".backup-\(Timestamp.compact(now))" : nil)
    }

    /// Reads the header without unlocking: the contents type and KDF parameters.
    public func inspect() throws(ClientError) -> KeystoreFile { try file.inspect() }

    /// Unlocks the keystore. A wrong passphrase or a damaged file changes nothing on disk.
    /// A keystore from before the message store gets its store key here, once: under the
    /// home's lock, read again, so that two commands upgrading at once agree on one key.
    public func unlock(passphrase: SecretBytes) throws(ClientError) -> (identity: DeviceIdentity, file: KeystoreFile) {
        let (identity, header) = try file.unlock(passphrase: passphrase)
        guard identity.storeKeyIsNew else { return (identity, header) }
        let lock = try home.lock()
        defer { withExtendedLifetime(lock) {} }
        var (again, current) = try file.unlock(passphrase: passphrase)
        if again.storeKeyIsNew {
            try file.write(again, passphrase: passphrase, parameters: current.parameters)
            again.storeKeyIsNew = false
        }
        return (again, current)
    }

    /// Unlocks the keystore and brings it in line with the directory: keys of a rotation the
    /// directory now shows become current, and retired keys past their retention are wiped
    /// (the keystore is rewritten, under the same passphrase and parameters, only then).
    public func unlock(
        passphrase: SecretBytes, directory: DirectoryState?, now: UInt64
    ) throws(ClientError) -> (identity: DeviceIdentity, file: KeystoreFile, changed: Bool) {
        let lock = try home.lock()
        defer { withExtendedLifetime(lock) {} }
        var (identity, header) = try file.unlock(passphrase: passphrase)
        let member = directory?.members[identity.memberName]
        let reconciled = identity.reconcile(with: member, now: now)
        guard reconciled || identity.storeKeyIsNew else { return (identity, header, false) }
        try file.write(identity, passphrase: passphrase, parameters: header.parameters)
        identity.storeKeyIsNew = false
        return (identity, header, reconciled)
    }

    /// Re-encrypts the keystore under `newPassphrase` (and `parameters`). The old file stays
    /// in place until the new one is written, flushed and read back; then a rename replaces
    /// it in one step. No copy under the old passphrase is kept.
    public func changePassphrase(
        from oldPassphrase: SecretBytes, to newPassphrase: SecretBytes, parameters: PasswordKDFParameters
    ) throws(ClientError) -> DeviceIdentity {
        let lock = try home.lock()
        defer { withExtendedLifetime(lock) {} }
        let (identity, _) = try file.unlock(passphrase: oldPassphrase)
        try file.write(identity, passphrase: newPassphrase, parameters: parameters)
        return identity
    }

    /// Rewrites the keystore with `identity` (after a reconcile), under the home's lock.
    public func save(_ identity: DeviceIdentity, passphrase: SecretBytes, parameters: PasswordKDFParameters) throws(ClientError) {
        let lock = try home.lock()
        defer { withExtendedLifetime(lock) {} }
        try file.write(identity, passphrase: passphrase, parameters: parameters)
    }

    /// Destroys the keystore (a device that saw its own revocation): overwritten, then removed.
    public func wipe() throws(ClientError) {
        do {
            try SecureFile.shred(path)
        } catch {
            throw ClientError(error)
        }
    }

    /// Makes (or reuses) the keys of a rotation, saves them as pending, and returns the
    /// rotation request for an administrator.
    public func startRotation(passphrase: SecretBytes, now: UInt64) throws(ClientError) -> (request: MemberRequest, identity: DeviceIdentity) {
        let lock = try home.lock()
        defer { withExtendedLifetime(lock) {} }
        var (identity, header) = try file.unlock(passphrase: passphrase)
        let hadPending = identity.pending != nil
        let request = identity.startRotation(now: now)
        if !hadPending {
            try file.write(identity, passphrase: passphrase, parameters: header.parameters)
        }
        return (request, identity)
    }
}
