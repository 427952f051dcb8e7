import ValiseCrypto

extension DirectoryVerifier {
    /// Applies a batch that passed `PublishPrecheck` against this verifier, verifying each
    /// new entry's signatures in order, one at a time, and stopping at the first that fails:
    /// a refused batch costs at most the signatures of the entries before the bad one (which
    /// admins really signed) and that entry's own (at most 32 admin signatures and 2 in its
    /// body). `verifications` counts the Ed25519 verifications made, also when it throws.
    /// A refusal is reported as `extend(with:now:)` reports it.
    public mutating func extend(prechecked batch: PublishPrecheck, now: UInt64, verifications: inout Int) throws(DirectoryError) {
        try checkShape(of: batch.entries)
        for entry in batch.entries {
            if entry.sequence < UInt64(count) {
                try checkSame(entry)
                continue
            }
            var made = 0
            let valid = Self.verifySignatures(of: entry, made: &made)
            verifications += made
            if !valid {
                // The verifier's in-order check names the signature that failed (verifying
                // the entry's signatures once more, up to that one).
                verifications += made
                try check(entry, now: now, requireThreshold: true, signaturesVerified: false)
                throw DirectoryError(.signature, sequence: entry.sequence, subject: entry.body.summary, "a signature does not verify")
            }
            try checkAndApply(entry, now: now, signaturesVerified: true)
        }
    }

    /// A batch is consecutive entries reaching at least the verified head.
    func checkShape(of entries: [DirectoryEntry]) throws(DirectoryError) {
        guard let last = entries.last else { return }
        // A batch is consecutive entries: a repeated or missing sequence number is refused
        // before anything else.
        for (index, entry) in entries.enumerated().dropFirst() {
            try Self.checkConsecutive(entry, after: entries[index - 1])
        }
        try checkReachesHead(last)
    }

    /// `entry` comes right after `previous` in a batch (compared without adding to numbers
    /// read from a file).
    static func checkConsecutive(_ entry: DirectoryEntry, after previous: DirectoryEntry) throws(DirectoryError) {
        guard entry.sequence <= previous.sequence || entry.sequence - previous.sequence != 1 else { return }
        throw DirectoryError(
            .sequence, sequence: entry.sequence, subject: entry.body.summary,
            "it follows entry \(previous.sequence) in this batch; entries must be consecutive")
    }

    /// A batch ending with `last` reaches at least the verified head.
    func checkReachesHead(_ last: DirectoryEntry) throws(DirectoryError) {
        // Compared without adding to a sequence number read from a file (it may be 2^64 - 1).
        if count > 0 && last.sequence < UInt64(count - 1) {
            throw DirectoryError(
                .rollback, sequence: last.sequence, subject: nil,
                "this log ends at entry \(last.sequence), but entries up to \(count - 1) were already verified")
        }
    }

    /// The same entry as the one held at its sequence number; or the next, checked (its
    /// signatures taken as `signaturesVerified` says) and applied.
    mutating func checkAndApply(_ entry: DirectoryEntry, now: UInt64, signaturesVerified: Bool) throws(DirectoryError) {
        if entry.sequence < UInt64(count) {
            try checkSame(entry)
        } else {
            try check(entry, now: now, requireThreshold: true, signaturesVerified: signaturesVerified)
            apply(entry)
        }
    }

    /// Whether every signature of `entry` verifies, its admins' first, in order, then those
    /// in its body; stops at the first that does not. `made` counts the verifications.
    static func verifySignatures(of entry: DirectoryEntry, made: inout Int) -> Bool {
        for signature in entry.signatures {
            made += 1
            guard entry.isValid(signature) else { return false }
        }
        made += entry.body.embeddedSignatureCount
        return entry.body.hasValidEmbeddedSignatures
    }
}

extension EntryBody {
    /// How many signatures `hasValidEmbeddedSignatures` verifies.
    var embeddedSignatureCount: Int {
        switch self {
        case .addRelay: 1
        case .enroll, .enrollAtHome: 1
        case .rotate(let rotation): rotation.oldKeyCountersigned ? 2 : 1
        default: 0
        }
    }
}
