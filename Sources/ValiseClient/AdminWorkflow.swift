import ValiseCrypto
public import ValiseDirectory

/// How entries are made: one admin proposes and signs; if that meets the threshold (and no
/// proposal was asked for) the entry is appended at once, else it is written to `pending/`
/// for other admins to co-sign with their own keys. No step ever needs two admins' secret
/// keys on one machine.
public struct AdminWorkflow: Sendable {
    public let organisation: OrganisationDirectory

    public init(organisation: OrganisationDirectory) {
        self.organisation = organisation
    }

    /// The outcome of proposing or co-signing an entry.
    public struct Outcome: Sendable {
        public let entry: DirectoryEntry
        /// Signatures still missing; 0 once appended.
        public let signaturesNeeded: Int
        /// Whether the entry is now in the log.
        public let appended: Bool
        /// Where the pending entry was written, when it was not appended.
        public let pendingPath: String?
    }

    /// Makes the next entry with `body`, signs it with `admin`'s key, and appends it or
    /// writes it as pending.
    public func submit(_ body: EntryBody, signer admin: AdminKeys, propose: Bool, now: UInt64) throws(ClientError) -> Outcome {
        let (_, verifier) = try organisation.load(now: now)
        let entry = Self.nextEntry(body, after: verifier, now: now).signed(by: admin.signing)
        return try settle(entry, verifier: verifier, propose: propose, pendingPath: nil, now: now)
    }

    /// Checks `body` as the next entry after `verifier`'s log, unsigned, so that an entry the
    /// log would refuse is refused before anyone unlocks a key or signs.
    public static func check(_ body: EntryBody, after verifier: DirectoryVerifier, now: UInt64) throws(ClientError) {
        let entry = Self.nextEntry(body, after: verifier, now: now)
        do {
            try verifier.check(entry, now: now, requireThreshold: false)
        } catch {
            throw OrganisationDirectory.explain(error, entry: entry, head: verifier.count)
        }
    }

    private static func nextEntry(_ body: EntryBody, after verifier: DirectoryVerifier, now: UInt64) -> DirectoryEntry {
        let state = verifier.state!
        // An entry may not be dated before its predecessor; a slightly slow clock here
        // should not block an admin, so the entry takes the later of the two times.
        return DirectoryEntry(
            sequence: UInt64(verifier.count), previousHash: state.headHash,
            timestamp: max(now, state.headTimestamp), body: body)
    }

    /// Makes a genesis and signs it with `admin` (if given, and one of the admins): with
    /// threshold 1 the log starts at once; otherwise the genesis waits for co-signatures.
    public func createGenesis(_ genesis: Genesis, signer admin: AdminKeys?, now: UInt64) throws(ClientError) -> Outcome {
        guard !organisation.hasLog else {
            throw ClientError.usage("organisation-exists", "\(organisation.logPath) exists already: this directory holds an organisation")
        }
        var entry = DirectoryEntry(sequence: 0, previousHash: .zero, timestamp: now, body: .genesis(genesis))
        if let admin {
            guard genesis.admins.admin(signingKey: admin.signing.publicKey) != nil else {
                throw ClientError.usage("not-an-admin", "the signing key in use (\(admin.name)) is not one of the genesis's admins; add its admin.pub with --admin-pub")
            }
            entry = entry.signed(by: admin.signing)
        }
        let verifier = DirectoryVerifier(pinnedGenesis: nil)
        return try settle(entry, verifier: verifier, propose: false, pendingPath: nil, now: now)
    }

    /// Adds `admin`'s signature to a pending entry, after checking it against the current
    /// log; appends it if it now meets the threshold and `append` is set.
    public func cosign(pendingPath: String, signer admin: AdminKeys, append: Bool, now: UInt64) throws(ClientError) -> Outcome {
        let pending = try OrganisationDirectory.readPending(pendingPath)
        let verifier = try currentVerifier(for: pending, now: now)
        let signed = pending.signed(by: admin.signing)
        return try settle(signed, verifier: verifier, propose: !append, pendingPath: pendingPath, now: now)
    }

    /// Appends a pending entry that has enough signatures.
    public func appendPending(pendingPath: String, now: UInt64) throws(ClientError) -> Outcome {
        let pending = try OrganisationDirectory.readPending(pendingPath)
        let verifier = try currentVerifier(for: pending, now: now)
        return try settle(pending, verifier: verifier, propose: false, pendingPath: pendingPath, now: now, mustAppend: true)
    }

    /// The pending entry as it would be checked now, for showing before co-signing.
    public func inspect(pendingPath: String, now: UInt64) throws(ClientError) -> (entry: DirectoryEntry, admins: AdminSet) {
        let pending = try OrganisationDirectory.readPending(pendingPath)
        let verifier = try currentVerifier(for: pending, now: now)
        do {
            try verifier.check(pending, now: now, requireThreshold: false)
        } catch {
            throw OrganisationDirectory.explain(error, entry: pending, head: verifier.count)
        }
        if case .genesis(let genesis) = pending.body { return (pending, genesis.admins) }
        return (pending, verifier.state!.admins)
    }

    private func currentVerifier(for entry: DirectoryEntry, now: UInt64) throws(ClientError) -> DirectoryVerifier {
        if case .genesis = entry.body, !organisation.hasLog { return DirectoryVerifier(pinnedGenesis: nil) }
        return try organisation.load(now: now).verifier
    }

    private func settle(
        _ entry: DirectoryEntry, verifier: DirectoryVerifier, propose: Bool, pendingPath: String?, now: UInt64,
        mustAppend: Bool = false
    ) throws(ClientError) -> Outcome {
        do {
            try verifier.check(entry, now: now, requireThreshold: false)
        } catch {
            throw OrganisationDirectory.explain(error, entry: entry, head: verifier.count)
        }
        let threshold: Int
        if case .genesis(let genesis) = entry.body {
            threshold = Int(genesis.admins.threshold)
        } else {
            threshold = Int(verifier.state!.admins.threshold)
        }
        let needed = max(0, threshold - entry.signatures.count)
        if needed == 0 && !propose {
            if case .genesis = entry.body {
                _ = try organisation.create(genesis: entry, now: now)
            } else {
                _ = try organisation.append(entry, now: now)
            }
            // A pending file kept in this organisation's pending/ is done with: the entry is
            // in the log now. Files elsewhere (a co-signer's copy) are left alone.
            if let pendingPath, pendingPath.hasPrefix(organisation.pendingPath + "/") {
                organisation.removePending(pendingPath)
            }
            return Outcome(entry: entry, signaturesNeeded: 0, appended: true, pendingPath: nil)
        }
        if mustAppend {
            throw ClientError(
                kind: .usage, code: "threshold",
                message: "entry \(entry.sequence) (\(entry.body.summary)) has \(entry.signatures.count) of the \(threshold) admin signatures it needs")
        }
        let path: String
        if let pendingPath {
            try OrganisationDirectory.writePending(entry, path: pendingPath)
            path = pendingPath
        } else {
            if case .genesis = entry.body { try organisation.prepare() }
            path = try organisation.writePending(entry)
        }
        return Outcome(entry: entry, signaturesNeeded: needed, appended: false, pendingPath: path)
    }
}
