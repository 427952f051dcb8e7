import Dispatch
import ValiseCrypto

/// Verifies a directory log entry by entry, from a pinned genesis, and keeps the resulting
/// state. Pure: the caller supplies the time.
///
/// Every entry is checked completely before anything changes, so a refused entry leaves
/// the verifier exactly as it was. A verifier never goes backwards: given a log shorter
/// than what it has verified it reports a rollback, and given a different entry for a
/// sequence number it has verified it reports a fork.
public struct DirectoryVerifier: Sendable {
    /// How far in the future (by the verifier's clock) an entry may be dated.
    public static let maximumClockSkew: UInt64 = 300
    /// More entries than any organisation will write; a longer log is refused.
    public static let maximumEntries = 10_000_000

    /// The genesis hash this verifier accepts; nil accepts the first genesis it sees.
    public let pinnedGenesis: EntryHash?
    /// The state after the last verified entry; nil before the genesis.
    public private(set) var state: DirectoryState?
    /// The hash of every verified entry, by sequence number.
    public private(set) var hashes: [EntryHash] = []
    /// The timestamp of every verified entry, by sequence number (for checkpoints).
    public private(set) var timestamps: [UInt64] = []

    public init(pinnedGenesis: EntryHash?) {
        self.pinnedGenesis = pinnedGenesis
    }

    /// Verifies a whole log from its genesis.
    /// Verifies a whole log from its genesis. The result always has a state: an empty log is
    /// refused (it has no genesis).
    public static func verify(_ entries: [DirectoryEntry], pinnedGenesis: EntryHash?, now: UInt64) throws(DirectoryError) -> DirectoryVerifier {
        guard !entries.isEmpty else {
            throw DirectoryError(.genesis, sequence: nil, subject: nil, "the log is empty: it has no genesis")
        }
        var verifier = DirectoryVerifier(pinnedGenesis: pinnedGenesis)
        try verifier.extend(with: entries, now: now)
        return verifier
    }

    /// The number of verified entries (the next sequence number).
    public var count: Int { hashes.count }

    /// Adds entries that continue (and may overlap) what is verified. Overlapping entries
    /// must be the same entries (else: fork); the batch must reach at least the verified
    /// head (else: rollback).
    public mutating func extend(with entries: [DirectoryEntry], now: UInt64) throws(DirectoryError) {
        try checkShape(of: entries)
        // Signature checks depend only on each entry's own bytes, so for a long batch they
        // run first, on every core; the in-order pass then only looks up their results.
        // (A relay does not: it takes publishes through `PublishPrecheck` and
        // `extend(prechecked:)`, which verify nothing before the cheap rules pass.)
        let verified = entries.count >= Self.parallelThreshold ? Self.verifySignaturesConcurrently(entries) : nil
        for (index, entry) in entries.enumerated() {
            try checkAndApply(entry, now: now, signaturesVerified: verified?[index] ?? false)
        }
    }

    /// Batches at least this long verify their signatures in parallel.
    static let parallelThreshold = 64

    /// For each entry, whether every signature it carries (admin signatures, and a request's
    /// or relay's own signatures in its body) verifies. A `false` is looked at again in
    /// order, which names the signature that failed.
    static func verifySignaturesConcurrently(_ entries: [DirectoryEntry]) -> [Bool] {
        let results = UnsafeMutableBufferPointer<Bool>.allocate(capacity: entries.count)
        defer { results.deallocate() }
        // A few more chunks than cores evens out uneven entries; each chunk writes only its
        // own slots, so the buffer needs no lock.
        let chunks = min(entries.count, 16)
        let chunkSize = (entries.count + chunks - 1) / chunks
        let slots = SendableSlots(results)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            // Late chunks may start past the end (16 chunks of ⌈n/16⌉); stride yields nothing then.
            for index in stride(from: chunk * chunkSize, to: min(entries.count, (chunk + 1) * chunkSize), by: 1) {
                let entry = entries[index]
                slots.set(index, entry.signatures.allSatisfy(entry.isValid) && entry.body.hasValidEmbeddedSignatures)
            }
        }
        return Array(results)
    }

    /// Verifies and applies the next entry.
    public mutating func append(_ entry: DirectoryEntry, now: UInt64) throws(DirectoryError) {
        try check(entry, now: now, requireThreshold: true)
        apply(entry)
    }

    /// Checks an entry as the next one without applying it. With `requireThreshold: false`
    /// an entry still gathering signatures passes if everything else is right (pending
    /// entries); every signature it has must still be valid and by an admin.
    public func check(_ entry: DirectoryEntry, now: UInt64, requireThreshold: Bool) throws(DirectoryError) {
        try check(entry, now: now, requireThreshold: requireThreshold, signaturesVerified: false)
    }

    /// `signaturesVerified`: every signature was already found valid (see
    /// `verifySignaturesConcurrently`), so only the rules remain to check.
    func check(_ entry: DirectoryEntry, now: UInt64, requireThreshold: Bool, signaturesVerified: Bool) throws(DirectoryError) {
        let subject = entry.body.summary
        func fail(_ rule: DirectoryError.Rule, _ detail: String) -> DirectoryError {
            DirectoryError(rule, sequence: entry.sequence, subject: subject, detail)
        }

        // The checks run in the order docs/PROTOCOL.md gives ("Verification"), so that an
        // entry breaking several rules is reported the same way by every implementation.
        guard entry.sequence == UInt64(count) else {
            throw fail(.sequence, "expected entry \(count)")
        }
        guard count < Self.maximumEntries else { throw fail(.malformed, "the log is longer than \(Self.maximumEntries) entries") }
        let genesis: Genesis?
        if case .genesis(let body) = entry.body { genesis = body } else { genesis = nil }
        if state == nil {
            guard genesis != nil else { throw fail(.genesis, "the first entry must be a genesis") }
        } else {
            guard genesis == nil else { throw fail(.genesis, "only the first entry may be a genesis") }
        }
        let expectedPrevious = state?.headHash ?? .zero
        guard entry.previousHash == expectedPrevious else {
            throw fail(.chain, state == nil
                ? "a genesis has no previous entry (its previous hash must be zero)"
                : "its previous hash is \(entry.previousHash.short)…, entry \(count - 1) has hash \(expectedPrevious.short)…")
        }
        if state == nil, let pinnedGenesis, entry.hash != pinnedGenesis {
            throw fail(.genesisPin, "its hash is \(entry.hash.short)…, the pinned genesis is \(pinnedGenesis.short)…")
        }
        if let state, entry.timestamp < state.headTimestamp {
            throw fail(.time, "dated \(entry.timestamp), before entry \(state.headSequence) (\(state.headTimestamp))")
        }
        guard entry.timestamp <= now &+ Self.maximumClockSkew else {
            throw fail(.future, "dated \(entry.timestamp - now) seconds after this machine's clock (at most \(Self.maximumClockSkew) allowed)")
        }

        // The admins who may sign: those in force before the entry; for the genesis, its own.
        let signers = genesis?.admins ?? state!.admins
        try Self.checkSignatures(of: entry, by: signers, verified: signaturesVerified, fail: fail)
        if let genesis {
            try Self.checkAdminSet(genesis.admins, fail: fail)
            guard genesis.freshness.warnAfterSeconds > 0,
                  genesis.freshness.warnAfterSeconds <= genesis.freshness.refuseAfterSeconds else {
                throw fail(.genesis, "the freshness bounds must satisfy 0 < warn ≤ refuse")
            }
        } else if case .changeAdmins(let set) = entry.body {
            try Self.checkAdminSet(set, fail: fail)
        }
        if requireThreshold && entry.signatures.count < Int(signers.threshold) {
            throw fail(.threshold, "signed by \(entry.signatures.count) admin(s), \(signers.threshold) required")
        }
        if case .certifyCheckpointKeyUntil(let certification) = entry.body {
            try Self.checkNotAfter(certification, timestamp: entry.timestamp, fail: fail)
        }
        if let state {
            try Self.checkBody(entry.body, state: state, verified: signaturesVerified, fail: fail)
        }
    }

    /// Checks an entry against the one already verified at its sequence number.
    func checkSame(_ entry: DirectoryEntry) throws(DirectoryError) {
        let known = hashes[Int(entry.sequence)]
        guard entry.hash == known else {
            throw DirectoryError(
                .fork, sequence: entry.sequence, subject: entry.body.summary,
                "two different entries claim this sequence number: this one has hash \(entry.hash.short)…, the verified one \(known.short)…. The relay or an admin is showing different logs to different people; report this to your key administrators")
        }
    }

    mutating func apply(_ entry: DirectoryEntry) {
        hashes.append(entry.hash)
        timestamps.append(entry.timestamp)
        if case .genesis(let genesis) = entry.body {
            var initial = DirectoryState(genesis: genesis, entry: entry)
            initial.markUsed(genesis.admins)
            state = initial
            return
        }
        state!.apply(entry)
    }
}

extension DirectoryVerifier {
    typealias Failure = (DirectoryError.Rule, String) -> DirectoryError

    /// Each signature in order: its key must be an admin's, then it must verify. Signers are
    /// distinct: decoding and `signed(by:)` both keep one signature per key.
    static func checkSignatures(
        of entry: DirectoryEntry, by admins: AdminSet, verified: Bool, fail: Failure
    ) throws(DirectoryError) {
        for signature in entry.signatures {
            guard admins.admin(signingKey: signature.signer) != nil else {
                throw fail(.signer, "key \(Hex.encode(signature.signer.bytes.prefix(8)))… is not an admin in force before this entry")
            }
            guard verified || entry.isValid(signature) else {
                throw fail(.signature, "the signature by admin \(admins.admin(signingKey: signature.signer)!.name) does not verify")
            }
        }
    }

    static func checkAdminSet(_ set: AdminSet, fail: Failure) throws(DirectoryError) {
        // 1 to 32 admins is checked when decoding (malformed); this guards sets built in code.
        guard (1...AdminSet.maximumAdmins).contains(set.admins.count) else {
            throw fail(.admins, "an organisation has 1 to \(AdminSet.maximumAdmins) admins")
        }
        guard set.threshold >= 1, Int(set.threshold) <= set.admins.count else {
            throw fail(.admins, "the threshold \(set.threshold) must be between 1 and the number of admins (\(set.admins.count))")
        }
        guard Set(set.admins.map(\.name)).count == set.admins.count,
              Set(set.admins.map(\.signingKey)).count == set.admins.count,
              Set(set.admins.map(\.transportKey)).count == set.admins.count else {
            throw fail(.admins, "admin names, signing keys and transport keys must all be distinct")
        }
    }

    /// An admin who stays (same name) keeps their keys; every other key in the new set must
    /// be unused — in particular a removed admin's key cannot pass to someone else.
    static func checkUnused(_ set: AdminSet, in state: DirectoryState?, fail: Failure) throws(DirectoryError) {
        guard let state else { return }
        let current = state.admins.admins
        for admin in set.admins {
            let staying = current.first { $0.name == admin.name }
            if staying?.signingKey != admin.signingKey {
                guard !state.usedSigningKeys.contains(admin.signingKey) else {
                    throw fail(.keyReuse, "the signing key of admin \(admin.name) was used before")
                }
            }
            if staying?.transportKey != admin.transportKey {
                guard !state.usedAgreementKeys.contains(admin.transportKey) else {
                    throw fail(.keyReuse, "the transport key of admin \(admin.name) was used before")
                }
            }
        }
    }

    static func checkBody(_ body: EntryBody, state: DirectoryState, verified: Bool, fail: Failure) throws(DirectoryError) {
        switch body {
        case .genesis:
            preconditionFailure("checked before the body")

        case .addRelay(let relay):
            guard state.relays[relay.name] == nil else { throw fail(.relay, "a relay named \(relay.name) exists") }
            guard isValidAddress(relay.address) else {
                throw fail(.relay, "the address must be HOST:PORT with a port from 1 to 65535")
            }
            guard verified || relay.hasValidProof else { throw fail(.request, "the relay's public-key proof does not verify") }
            guard !state.usedAgreementKeys.contains(relay.noiseKey), !state.usedSigningKeys.contains(relay.signingKey) else {
                throw fail(.keyReuse, "the relay's keys were used before")
            }

        case .removeRelay(let name):
            try checkRemoveRelay(name, state: state, fail: fail)

        case .enroll(let enrollment):
            try checkEnrollment(enrollment, state: state, verified: verified, fail: fail)

        case .enrollAtHome(let enrollment, let home):
            try checkEnrollment(enrollment, state: state, verified: verified, fail: fail)
            guard state.relays[home] != nil else { throw fail(.relay, "there is no relay named \(home)\(state.relayList)") }

        case .move(let member, let home):
            try checkMove(member, to: home, state: state, fail: fail)

        case .setRelayAddresses(let name, let addresses):
            try checkRelayAddresses(name, addresses, state: state, fail: fail)

        case .rotate(let rotation):
            guard let member = state.members[rotation.member] else { throw fail(.member, "\(rotation.member) is not a member") }
            guard member.isActive else { throw fail(.member, "\(rotation.member) is revoked") }
            guard rotation.oldIdentityKey == member.identityKey else {
                throw fail(.member, "it replaces a key that is not \(rotation.member)'s current identity key")
            }
            guard verified || rotation.request.isValid else {
                throw fail(.request, rotation.oldKeyCountersigned
                    ? "the rotation request's signatures (new key and old key) do not verify"
                    : "the new device's enrollment request does not verify")
            }
            try checkUnusedDeviceKeys(rotation.newIdentityKey, rotation.newTransportKey, state: state, fail: fail)

        case .revoke(let revocation):
            switch revocation.target {
            case .member(let name):
                guard let member = state.members[name] else { throw fail(.member, "\(name) is not a member") }
                guard member.isActive else { throw fail(.member, "\(name) is already revoked") }
            case .identityKey(let key):
                guard state.revokedKeys[key] == nil else { throw fail(.member, "this key is already revoked") }
                guard state.members.values.contains(where: { member in
                    member.identityKey == key || member.retiredKeys.contains { $0.identityKey == key }
                }) else {
                    throw fail(.member, "no member has or had this identity key")
                }
            }

        case .changeAdmins(let set):
            try checkUnused(set, in: state, fail: fail)

        case .certifyCheckpointKey(let key):
            guard !state.usedSigningKeys.contains(key) else { throw fail(.keyReuse, "the checkpoint key was used before") }
        case .certifyCheckpointKeyUntil(let certification):
            guard !state.usedSigningKeys.contains(certification.key) else { throw fail(.keyReuse, "the checkpoint key was used before") }
        }
    }

    /// A kind-9 key's not-after: after the entry's timestamp, and at most 730 days after it
    /// (a stolen key's power ends by then even for a device never shown its replacement).
    static func checkNotAfter(_ certification: CheckpointKeyCertification, timestamp: UInt64, fail: Failure) throws(DirectoryError) {
        guard certification.notAfter > timestamp,
              certification.notAfter - timestamp <= CheckpointKeyCertification.maximumValiditySeconds else {
            throw fail(.notAfter, "the not-after \(certification.notAfter) must be after the entry's timestamp (\(timestamp)) and at most \(CheckpointKeyCertification.maximumValiditySeconds / 86_400) days after it")
        }
    }

    static func checkUnusedDeviceKeys(
        _ identity: SigningPublicKey, _ transport: AgreementPublicKey, state: DirectoryState, fail: Failure
    ) throws(DirectoryError) {
        guard !state.usedSigningKeys.contains(identity) else { throw fail(.keyReuse, "the identity key was used before") }
        guard !state.usedAgreementKeys.contains(transport) else { throw fail(.keyReuse, "the transport key was used before") }
    }

    /// `HOST:PORT`, where HOST is a DNS name or IPv4 address (letters, digits, `-` and `.`,
    /// not starting or ending with `.` or `-`) or `[IPv6]` (hexadecimal digits, `:` and `.`
    /// in brackets), and PORT is 1 to 65535 in decimal without a sign or leading zeros.
    static func isValidAddress(_ address: String) -> Bool {
        guard let colon = address.lastIndex(of: ":") else { return false }
        let host = address[..<colon]
        let port = address[address.index(after: colon)...]
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }), port.first != "0",
              let number = Int(port), (1...65_535).contains(number) else { return false }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return false }
            return host.dropFirst().dropLast().allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        guard !host.isEmpty, host.count <= 253, let first = host.first, let last = host.last,
              first != "." && first != "-" && last != "." && last != "-" else { return false }
        return host.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "." }
    }
}

/// Result slots written by concurrent workers, each to its own indices.
private struct SendableSlots: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Bool>
    init(_ buffer: UnsafeMutableBufferPointer<Bool>) { self.buffer = buffer }
    func set(_ index: Int, _ value: Bool) { buffer[index] = value }
}

extension EntryBody {
    /// Whether the signatures a body carries (a request's, a relay's proof) verify.
    var hasValidEmbeddedSignatures: Bool {
        switch self {
        case .addRelay(let relay): relay.hasValidProof
        case .enroll(let enrollment), .enrollAtHome(let enrollment, _): enrollment.request.isValid
        case .rotate(let rotation): rotation.request.isValid
        default: true
        }
    }
}
