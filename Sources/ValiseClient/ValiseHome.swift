public import ValiseStore

/// The directory that holds a device's files: `--home`, else `$VALISE_HOME`, else
/// `~/.valise`. Only its owner may use it (mode 0700).
public struct ValiseHome: Sendable, Hashable {
    public let path: String

    public init(path: String) {
        // A trailing slash would make "dir//device.key" in messages; keep paths tidy.
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
    }

    /// Resolves the home from a flag and the environment.
    public static func resolve(flag: String?, environment: [String: String]) throws(ClientError) -> ValiseHome {
        if let flag {
            guard !flag.isEmpty else { throw .usage("empty-home", "--home was given an empty path") }
            return ValiseHome(path: flag)
        }
        if let fromEnvironment = environment["VALISE_HOME"], !fromEnvironment.isEmpty {
            return ValiseHome(path: fromEnvironment)
        }
        guard let home = environment["HOME"], !home.isEmpty else {
            throw .usage("no-home", "cannot find a home for Valise: set --home, VALISE_HOME or HOME")
        }
        return ValiseHome(path: home + "/.valise")
    }

    /// The device keystore.
    public var deviceKeyPath: String { path + "/device.key" }
    /// The enrollment request `valise init` writes unless told otherwise.
    public var enrollmentRequestPath: String { path + "/enrollment.request" }
    /// The rotation request `valise keys rotate` writes unless told otherwise.
    public var rotationRequestPath: String { path + "/rotation.request" }
    /// The pinned organisation: the bundle last accepted (genesis, log, checkpoint).
    public var organisationPath: String { path + "/organisation.bundle" }
    /// The local message store: sessions, prekeys, outbox and inbox, encrypted under the
    /// keystore's store key.
    public var messageStorePath: String { path + "/messages.sqlite" }
    /// Proof of directory forks this device found, for the key administrator (0700).
    public var forkEvidencePath: String { path + "/fork-evidence" }
    /// The agent's socket directory and socket (`valise agent`).
    public var agentSocketPath: String { path + "/agent/socket" }
    /// The lock taken while the device's files are rewritten.
    public var lockPath: String { path + "/.lock" }

    /// Creates the directory (mode 0700) or checks that the existing one is private.
    public func prepare() throws(ClientError) {
        do {
            try SecureFile.preparePrivateDirectory(path)
        } catch {
            throw ClientError(error)
        }
    }

    /// Checks, creating nothing, that the home exists and only its owner may enter it:
    /// every command that reads the device's files does, read-only ones included (other
    /// users must neither read nor swap them).
    public func checkPrivate() throws(ClientError) {
        do {
            try SecureFile.checkPrivateDirectory(path)
        } catch {
            throw ClientError(error)
        }
    }

    /// Takes the home's lock for as long as the returned object lives, after checking that
    /// the home is still private (other users must not be able to swap its files).
    public func lock() throws(ClientError) -> FileLock {
        try checkPrivate()
        do {
            return try FileLock(path: lockPath)
        } catch {
            throw ClientError(error)
        }
    }
}
