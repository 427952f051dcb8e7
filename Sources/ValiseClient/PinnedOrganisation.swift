import ValiseCrypto
public import ValiseDirectory
import ValiseStore

/// The organisation a staff device has pinned: the bundle it accepted, kept in the home as
/// `organisation.bundle`. Its genesis never changes; it only ever grows.
public struct PinnedOrganisation: Sendable {
    public let home: ValiseHome

    public init(home: ValiseHome) {
        self.home = home
    }

    public var path: String { home.organisationPath }
    public var exists: Bool { SecureFile.exists(path) }

    /// A verified pinned organisation.
    public struct Loaded: Sendable {
        public let bundle: OrganisationBundle
        public let verifier: DirectoryVerifier
        public var state: DirectoryState { verifier.state! }
    }

    /// Reads and verifies the pinned bundle.
    public func load(now: UInt64) throws(ClientError) -> Loaded {
        guard exists else {
            throw ClientError(
                kind: .notSetUp, code: "no-organisation",
                message: "this device has no organisation pinned; ask your key administrator for the bundle and run: valise init --org-bundle FILE")
        }
        let bundle = try Self.readBundle(path)
        return try Self.verify(bundle, pinnedGenesis: bundle.genesisHash, file: path, now: now)
    }

    /// What `pin` did.
    public enum PinResult: Sendable {
        case pinned(genesis: EntryHash)
        case updated(fromCount: Int, toCount: Int)
        case unchanged
    }

    /// Pins `bundle`: the first time (its genesis must equal `expectedGenesis` if given), or
    /// an update, which must have the same genesis and continue what is pinned.
    public func pin(_ bundle: OrganisationBundle, expectedGenesis: EntryHash?, now: UInt64, file: String) throws(ClientError) -> PinResult {
        try home.prepare()
        let lock = try home.lock()
        defer { withExtendedLifetime(lock) {} }
        guard exists else {
            if let expectedGenesis, expectedGenesis != bundle.genesisHash {
                throw ClientError(
                    kind: .verification, code: DirectoryError.Rule.genesisPin.rawValue,
                    message: "\(file): its genesis is \(bundle.genesisHash), not the expected \(expectedGenesis)")
            }
            _ = try Self.verify(bundle, pinnedGenesis: bundle.genesisHash, file: file, now: now)
            try write(bundle)
            return .pinned(genesis: bundle.genesisHash)
        }
        let current = try load(now: now)
        guard bundle.genesisHash == current.bundle.genesisHash else {
            throw ClientError(
                kind: .verification, code: DirectoryError.Rule.genesisPin.rawValue,
                message: "\(file) belongs to another organisation (genesis \(bundle.genesisHash.short)…); this device is pinned to \(current.bundle.genesisHash.short)…")
        }
        // The new bundle must verify on its own first (a tampered file is reported as the
        // rule it breaks); only a valid log that differs from the pinned one is a fork.
        _ = try Self.verify(bundle, pinnedGenesis: current.bundle.genesisHash, file: file, now: now)
        var verifier = current.verifier
        do {
            try verifier.extend(with: bundle.entries, now: now)
        } catch {
            throw ClientError(error, file: file)
        }
        let checkpoint = try Self.newer(bundle.checkpoint, than: current.bundle.checkpoint, verifier: verifier, file: file, now: now)
        let grew = verifier.count > current.verifier.count
        guard grew || checkpoint != current.bundle.checkpoint else { return .unchanged }
        try write(OrganisationBundle(entries: grew ? bundle.entries : current.bundle.entries, checkpoint: checkpoint))
        return .updated(fromCount: current.verifier.count, toCount: verifier.count)
    }

    private func write(_ bundle: OrganisationBundle) throws(ClientError) {
        do {
            try SecureFile.writeAtomically(bundle.encoded(), to: path)
        } catch {
            throw ClientError(error)
        }
    }

    static func readBundle(_ path: String) throws(ClientError) -> OrganisationBundle {
        let bytes = try PublicFile.read(path, maximumByteCount: DirectoryFiles.maximumLogByteCount)
        do {
            return try OrganisationBundle(decoding: bytes)
        } catch {
            throw ClientError(error, file: path)
        }
    }

    /// Verifies a bundle's log and checkpoint.
    static func verify(_ bundle: OrganisationBundle, pinnedGenesis: EntryHash?, file: String, now: UInt64) throws(ClientError) -> Loaded {
        do {
            let verifier = try DirectoryVerifier.verify(bundle.entries, pinnedGenesis: pinnedGenesis, now: now)
            try bundle.checkpoint?.verify(against: verifier, now: now)
            return Loaded(bundle: bundle, verifier: verifier)
        } catch {
            throw ClientError(error, file: file)
        }
    }

    /// The newer of two checkpoints, after verifying the new one. The current one is
    /// dropped if it no longer counts against the grown log (a newer checkpoint key).
    private static func newer(_ candidate: Checkpoint?, than pinned: Checkpoint?, verifier: DirectoryVerifier, file: String, now: UInt64) throws(ClientError) -> Checkpoint? {
        let current: Checkpoint?
        do {
            current = try pinned?.counts(against: verifier, now: now) == true ? pinned : nil
            try candidate?.verify(against: verifier, now: now)
        } catch {
            throw ClientError(error, file: file)
        }
        guard let candidate else { return current }
        guard let current else { return candidate }
        return candidate.time > current.time ? candidate : current
    }
}
