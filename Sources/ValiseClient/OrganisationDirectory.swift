import ValiseCrypto
public import ValiseDirectory
public import ValiseStore
#if canImport(Glibc)
import Glibc
#endif

/// An administrator's working copy of the organisation: `directory.log` (the verified log),
/// `pending/` (entries gathering co-signatures) and `checkpoint` (the newest checkpoint).
/// The directory is private (mode 0700); by default it also holds the admin's keys.
public struct OrganisationDirectory: Sendable {
    public let path: String

    public init(path: String) {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
    }

    public var logPath: String { path + "/directory.log" }
    public var pendingPath: String { path + "/pending" }
    public var checkpointPath: String { path + "/checkpoint" }
    public var lockPath: String { path + "/.lock" }
    /// The admin keys kept in the organisation directory by `valise admin init`.
    public var defaultKeys: KeyDirectory { KeyDirectory(path: path) }

    public var hasLog: Bool { SecureFile.exists(logPath) }

    public func prepare() throws(ClientError) { try ValiseHome(path: path).prepare() }

    /// The log, verified from its own genesis.
    public func load(now: UInt64) throws(ClientError) -> (entries: [DirectoryEntry], verifier: DirectoryVerifier) {
        guard hasLog else {
            throw ClientError(
                kind: .notSetUp, code: "no-organisation",
                message: "no directory log in \(path); create the organisation with: valise admin init --org \(path) --name NAME")
        }
        let bytes = try PublicFile.read(logPath, maximumByteCount: DirectoryFiles.maximumLogByteCount)
        let entries: [DirectoryEntry]
        do {
            entries = try DirectoryFiles.decodeLog(bytes)
        } catch {
            throw ClientError(error, file: logPath)
        }
        do {
            return (entries, try DirectoryVerifier.verify(entries, pinnedGenesis: nil, now: now))
        } catch {
            throw ClientError(error, file: logPath)
        }
    }

    /// Writes the whole log atomically.
    func save(_ entries: [DirectoryEntry]) throws(ClientError) {
        do {
            try SecureFile.writeAtomically(DirectoryFiles.encodeLog(entries), to: logPath, mode: 0o644)
        } catch {
            throw ClientError(error)
        }
    }

    public func lock() throws(ClientError) -> FileLock {
        do {
            try SecureFile.checkPrivateDirectory(path)
            return try FileLock(path: lockPath)
        } catch {
            throw ClientError(error)
        }
    }

    /// Verifies `entry` (with its threshold) as the next entry and appends it.
    public func append(_ entry: DirectoryEntry, now: UInt64) throws(ClientError) -> DirectoryVerifier {
        let lock = try lock()
        defer { withExtendedLifetime(lock) {} }
        var (entries, verifier) = try load(now: now)
        do {
            try verifier.append(entry, now: now)
        } catch {
            throw Self.explain(error, entry: entry, head: verifier.count)
        }
        entries.append(entry)
        try save(entries)
        return verifier
    }

    /// Adds entries fetched from a relay (they must continue this log, may overlap it, and
    /// must verify), and a newer checkpoint. Returns how many entries were new.
    public func merge(_ fetched: [DirectoryEntry], checkpoint: Checkpoint?, now: UInt64, source: String) throws(ClientError) -> Int {
        let lock = try lock()
        defer { withExtendedLifetime(lock) {} }
        var (entries, verifier) = try load(now: now)
        let before = verifier.count
        do {
            try verifier.extend(with: fetched, now: now)
            try checkpoint?.verify(against: verifier, now: now)
        } catch {
            throw ClientError(error, file: source)
        }
        entries += fetched.filter { $0.sequence >= UInt64(before) }
        if verifier.count > before { try save(entries) }
        if let checkpoint, try currentCheckpoint(against: verifier, now: now).map({ checkpoint.time > $0.time }) ?? true {
            try writeCheckpoint(checkpoint)
        }
        return verifier.count - before
    }

    /// Starts the log with a genesis whose signatures meet its threshold.
    public func create(genesis entry: DirectoryEntry, now: UInt64) throws(ClientError) -> DirectoryVerifier {
        try prepare()
        let lock = try lock()
        defer { withExtendedLifetime(lock) {} }
        guard !hasLog else {
            throw ClientError.usage("organisation-exists", "\(logPath) exists already: this directory holds an organisation")
        }
        let verifier: DirectoryVerifier
        do {
            verifier = try DirectoryVerifier.verify([entry], pinnedGenesis: nil, now: now)
        } catch {
            throw ClientError(error)
        }
        try save([entry])
        return verifier
    }

    /// A sequence mismatch on append means someone else's entry took the number first.
    static func explain(_ error: DirectoryError, entry: DirectoryEntry, head: Int) -> ClientError {
        if error.code == DirectoryError.Rule.sequence.rawValue || error.code == DirectoryError.Rule.chain.rawValue,
           entry.sequence < UInt64(head) {
            return ClientError(
                kind: .verification, code: "stale-proposal",
                message: "entry \(entry.sequence) (\(entry.body.summary)) was taken by another entry first; propose it again against the current head (entry \(head - 1))")
        }
        return ClientError(error)
    }

    // MARK: Pending entries

    /// Writes an entry that still needs co-signatures to `pending/`, and returns its path.
    public func writePending(_ entry: DirectoryEntry, to explicitPath: String? = nil) throws(ClientError) -> String {
        let target: String
        if let explicitPath {
            target = explicitPath
        } else {
            do {
                try SecureFile.preparePrivateDirectory(pendingPath)
            } catch {
                throw ClientError(error)
            }
            target = "\(pendingPath)/\(entry.sequence)-\(entry.body.kind.name)-\(entry.hash.short.prefix(8)).pending"
        }
        try Self.writePending(entry, path: target)
        return target
    }

    func removePending(_ path: String) {
        unlink(path)
        try? SecureFile.syncDirectory(pendingPath)
    }

    /// The pending entries in `pending/`, oldest sequence first, with their paths.
    public func pendingEntries() -> [(path: String, entry: DirectoryEntry)] {
        guard let names = try? SecureFile.list(pendingPath) else { return [] }
        return names.filter { $0.hasSuffix(".pending") }.compactMap { name in
            let path = pendingPath + "/" + name
            return (try? Self.readPending(path)).map { (path, $0) }
        }.sorted { $0.entry.sequence < $1.entry.sequence }
    }

    public static func writePending(_ entry: DirectoryEntry, path: String) throws(ClientError) {
        do {
            try SecureFile.writeAtomically(DirectoryFiles.encodePending(entry), to: path, mode: 0o644)
        } catch {
            throw ClientError(error)
        }
    }

    public static func readPending(_ path: String) throws(ClientError) -> DirectoryEntry {
        let bytes = try PublicFile.read(path, maximumByteCount: 64 * 1024)
        do {
            return try DirectoryFiles.decodePending(bytes)
        } catch {
            throw ClientError(error, file: path)
        }
    }

    // MARK: Checkpoints and bundles

    /// The newest checkpoint written here, if any (not yet verified).
    public func readCheckpoint() throws(ClientError) -> Checkpoint? {
        guard SecureFile.exists(checkpointPath) else { return nil }
        let bytes = try PublicFile.read(checkpointPath, maximumByteCount: 1024)
        do {
            return try Checkpoint(fileBytes: bytes)
        } catch {
            throw ClientError(error, file: checkpointPath)
        }
    }

    /// The checkpoint written here if it still counts against `verifier`: once the log
    /// certifies a newer checkpoint key, the old key's checkpoint is left out (published or
    /// bundled, it would be refused) until the timer signs with the new key.
    public func currentCheckpoint(against verifier: DirectoryVerifier, now: UInt64) throws(ClientError) -> Checkpoint? {
        guard let checkpoint = try readCheckpoint() else { return nil }
        do {
            return try checkpoint.counts(against: verifier, now: now) ? checkpoint : nil
        } catch {
            throw ClientError(error, file: checkpointPath)
        }
    }

    public func writeCheckpoint(_ checkpoint: Checkpoint) throws(ClientError) {
        do {
            try SecureFile.writeAtomically(checkpoint.fileBytes(), to: checkpointPath, mode: 0o644)
        } catch {
            throw ClientError(error)
        }
    }

    /// The organisation bundle for staff devices: the verified log and the newest checkpoint,
    /// if it still counts against it.
    public func bundle(now: UInt64) throws(ClientError) -> OrganisationBundle {
        let (entries, verifier) = try load(now: now)
        return OrganisationBundle(entries: entries, checkpoint: try currentCheckpoint(against: verifier, now: now))
    }
}
