import ValiseCrypto

/// What a relay checks of a published batch before it verifies a single signature: its
/// size, that every entry decodes, continues the verified log (overlapping it only with the
/// same entries) and chains, and that each new entry is signed only by admins in force at
/// that entry, each once, at least as many as the threshold. Admin changes inside the batch
/// are followed by what they claim; the signatures that make the claim true are verified
/// afterwards, by `DirectoryVerifier.extend(prechecked:now:verifications:)`.
///
/// Every rule but the signatures is checked here, by the verifier's own code in its own
/// order, so a batch refused here gets the message it would get from a full verification.
/// Pure, and cheap: decoding and hashing, no public-key operation.
public struct PublishPrecheck: Sendable {
    /// Entries in one publish, at most: a relay's 1 MiB message holds fewer (the smallest
    /// entry with one signature is over 150 bytes).
    public static let maximumEntries = 8_192
    /// Bytes of encoded entries in one publish, at most (a relay's message limit).
    public static let maximumBytes = 1 << 20

    /// The batch, decoded, in order (entries the verifier holds included).
    public let entries: [DirectoryEntry]
    /// The verifier as it will be if every signature of the new entries verifies.
    public let verifier: DirectoryVerifier

    /// Decodes and checks `encoded` against `verifier`; refuses with the first broken rule.
    public static func check(_ encoded: [[UInt8]], against verifier: DirectoryVerifier, now: UInt64) throws(DirectoryError) -> PublishPrecheck {
        guard encoded.count <= maximumEntries else {
            throw DirectoryError(.malformed, sequence: nil, subject: "publish", "more than \(maximumEntries) entries in one publish")
        }
        let bytes = encoded.reduce(0) { $0 + $1.count }
        guard bytes <= maximumBytes else {
            throw DirectoryError(.malformed, sequence: nil, subject: "publish", "more than \(maximumBytes) bytes of entries in one publish")
        }
        // Entry by entry, decoded only when its turn comes: a batch that breaks a rule at
        // its first entry costs the decoding of that entry, not of a megabyte. Only the last
        // is decoded first, so that a batch ending before the verified head is refused as a
        // rollback, as the verifier refuses it.
        var claimed = verifier
        guard let last = encoded.last else { return PublishPrecheck(entries: [], verifier: claimed) }
        try claimed.checkReachesHead(try decode(last))
        var entries: [DirectoryEntry] = []
        entries.reserveCapacity(encoded.count)
        for bytes in encoded {
            let entry = try decode(bytes)
            if let previous = entries.last { try DirectoryVerifier.checkConsecutive(entry, after: previous) }
            try claimed.checkAndApply(entry, now: now, signaturesVerified: true)
            entries.append(entry)
        }
        return PublishPrecheck(entries: entries, verifier: claimed)
    }

    private static func decode(_ bytes: [UInt8]) throws(DirectoryError) -> DirectoryEntry {
        do throws(FormatError) {
            return try DirectoryEntry(decoding: bytes)
        } catch {
            throw .malformed(error)
        }
    }

    /// Checks decoded entries against `verifier` (again, at commit, when the log moved on
    /// since their signatures were verified: those still hold, the rules may not).
    public static func check(_ entries: [DirectoryEntry], against verifier: DirectoryVerifier, now: UInt64) throws(DirectoryError) -> PublishPrecheck {
        var claimed = verifier
        try claimed.checkShape(of: entries)
        for entry in entries { try claimed.checkAndApply(entry, now: now, signaturesVerified: true) }
        return PublishPrecheck(entries: entries, verifier: claimed)
    }

    /// Entries the verifier it was checked against did not hold.
    public func newEntries(after count: Int) -> [DirectoryEntry] {
        entries.filter { $0.sequence >= UInt64(count) }
    }
}
