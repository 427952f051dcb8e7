import NIOConcurrencyHelpers
public import ValiseCrypto
public import ValiseDirectory
import ValiseStore

/// Who a transport key belongs to, as the relay admits it.
public enum Admission: Equatable, Sendable, CustomStringConvertible {
    /// A member's current device: every request.
    case device(MemberName)
    /// An administrator's transport key: fetching and publishing the directory only.
    case admin(String)
    /// A revoked member's last device key: it may read the first `entries` entries of the
    /// directory (through its own revocation), so that it can see the signed revocation
    /// and wipe its keys; nothing else.
    case revoked(MemberName, entries: Int)
    /// A member's current device whose home, in this relay's directory, is the relay named
    /// `home`: it may read the whole directory (so that it can verify its home and go
    /// there), nothing else.
    case notHome(MemberName, home: String)

    /// Whether the key may send DirectoryPublish. An entry's authority is its signatures,
    /// but verifying them costs the relay, so only keys the organisation trusts to publish
    /// may make it pay: admins (and relays, once relays link, as a case of their own here).
    /// Devices get entries through their admins.
    public var mayPublishDirectory: Bool {
        switch self {
        case .admin: true
        case .device, .revoked, .notHome: false
        }
    }

    /// "device" or "admin", without saying whose.
    public var role: String {
        switch self {
        case .device: "device"
        case .admin: "admin"
        case .revoked: "revoked device"
        case .notHome: "device homed elsewhere"
        }
    }

    /// The role the open-connection counts file it under.
    public var connectionRole: ConnectionRole {
        if case .admin = self { .admin } else { .device }
    }

    public var description: String {
        switch self {
        case .device(let name): "device of \(name)"
        case .admin(let name): "admin \(name)"
        case .revoked(let name, _): "revoked device of \(name)"
        case .notHome(let name, let home): "device of \(name), homed at \(home)"
        }
    }
}

/// The directory the relay stores and serves, kept in `DIR/organisation.bundle` and pinned
/// to the genesis it was set up with. The relay cannot write it: it only stores entries
/// that admins signed and that verify. Readers get an immutable snapshot without waiting;
/// a publish is verified without any lock and committed (serialised, briefly) by swapping
/// in a new snapshot only after the file is durable.
public final class RelayDirectory: Sendable {
    /// Everything a connection needs, as of one moment.
    public struct Snapshot: Sendable {
        public let verifier: DirectoryVerifier
        public let entries: [DirectoryEntry]
        /// Each entry's encoding, by sequence number, ready to send.
        public let encodedEntries: [[UInt8]]
        public let checkpoint: Checkpoint?
        /// Admitted transport keys.
        public let admissions: [AgreementPublicKey: Admission]
        /// This relay's name in the directory, when an add-relay entry lists its Noise key.
        public let relayName: String?
        /// Transport keys a rotation replaced: a device that has not synced yet still
        /// offers one, a routine refusal (not a warning).
        public let retiredTransportKeys: Set<AgreementPublicKey>

        public var state: DirectoryState { verifier.state! }
        public var count: Int { verifier.count }

        init(verifier: DirectoryVerifier, entries: [DirectoryEntry], checkpoint: Checkpoint?, relayKey: AgreementPublicKey) {
            self.verifier = verifier
            self.entries = entries
            self.encodedEntries = entries.map { $0.encoded() }
            self.checkpoint = checkpoint
            let state = verifier.state!
            let relayName = state.relays.values.first { $0.noiseKey == relayKey }?.name
            var admissions: [AgreementPublicKey: Admission] = [:]
            for admin in state.admins.admins { admissions[admin.transportKey] = .admin(admin.name) }
            for member in state.members.values {
                switch member.status {
                case .active:
                    // A relay that does not know its own name serves every device, as a
                    // relay did before homes existed.
                    if let relayName, let home = state.homeRelay(of: member.name)?.name, home != relayName {
                        admissions[member.transportKey] = .notHome(member.name, home: home)
                    } else {
                        admissions[member.transportKey] = .device(member.name)
                    }
                case .revoked(_, let sequence):
                    if admissions[member.transportKey] == nil, sequence < UInt64(verifier.count) {
                        admissions[member.transportKey] = .revoked(member.name, entries: Int(sequence) + 1)
                    }
                }
            }
            self.admissions = admissions
            self.relayName = relayName
            self.retiredTransportKeys = Set(state.members.values.flatMap { $0.retiredKeys.map(\.transportKey) })
        }
    }

    /// What a publish changed.
    public struct Published: Sendable {
        public let count: Int
        public let head: EntryHash
        /// Keys that were admitted before and are not now as they were (revoked, rotated
        /// out, removed), but for devices whose home moved (`rehomed`).
        public let noLongerAdmitted: [AgreementPublicKey]
        /// Current device keys whose member's home moved away from this relay or to it:
        /// their connections were admitted in the other role, and each gets the message
        /// that says where the home is now.
        public let rehomed: [AgreementPublicKey: String]
        /// Members that were active before and are not now (revoked): their mailboxes go.
        public let removedMembers: [MemberName]
        /// Members active before and after whose identity key changed (a rotation): the
        /// prekeys their old key signed go.
        public let rotatedMembers: [MemberName]
    }

    public let path: String
    /// The relay's directory (keys, this bundle, the queue): where fork evidence goes too.
    public let folder: String
    private let relayKey: AgreementPublicKey
    private let current: NIOLockedValueBox<Snapshot>
    /// Held only while a verified publish is written and swapped in.
    private let committing = NIOLock()

    /// Loads and verifies `DIR/organisation.bundle` against its own (pinned) genesis.
    public init(directory: String, relayKey: AgreementPublicKey, now: UInt64) throws(RelayError) {
        folder = directory
        path = directory + "/organisation.bundle"
        self.relayKey = relayKey
        let bundle = try Self.read(path)
        do throws(DirectoryError) {
            let verifier = try DirectoryVerifier.verify(bundle.entries, pinnedGenesis: bundle.genesisHash, now: now)
            try bundle.checkpoint?.verify(against: verifier, now: now)
            current = NIOLockedValueBox(Snapshot(
                verifier: verifier, entries: bundle.entries, checkpoint: bundle.checkpoint,
                relayKey: relayKey))
        } catch {
            throw .directoryRejected("\(path) does not verify: \(error.message)")
        }
    }

    /// Writes the first bundle of a new relay (`valised init`), after verifying it.
    public static func pin(_ bundle: OrganisationBundle, directory: String, now: UInt64) throws(RelayError) {
        do throws(DirectoryError) {
            let verifier = try DirectoryVerifier.verify(bundle.entries, pinnedGenesis: bundle.genesisHash, now: now)
            try bundle.checkpoint?.verify(against: verifier, now: now)
        } catch {
            throw .directoryRejected(error.message)
        }
        try write(bundle, to: directory + "/organisation.bundle")
    }

    public var snapshot: Snapshot { current.withLockedValue { $0 } }

    /// A publish whose signatures verified against `base`, ready to commit.
    public struct Verified: Sendable {
        let base: Snapshot
        let batch: PublishPrecheck
        let verifier: DirectoryVerifier
        let checkpoint: Checkpoint?
    }

    /// Checks entries (consecutive; they may overlap what is stored) and a checkpoint against
    /// the current snapshot: every cheap rule first (`PublishPrecheck`), then the signatures,
    /// in order, stopping at the first that fails. Holds no lock, so readers and other
    /// publishes never wait for it; `verifications` counts the Ed25519 verifications made,
    /// also when it throws. Call it off the event loops.
    public func verify(entries encoded: [[UInt8]], checkpoint encodedCheckpoint: [UInt8], now: UInt64, verifications: inout Int) throws(RelayError) -> Verified {
        let base = snapshot
        do throws(DirectoryError) {
            let batch = try PublishPrecheck.check(encoded, against: base.verifier, now: now)
            var verifier = base.verifier
            try verifier.extend(prechecked: batch, now: now, verifications: &verifications)
            var checkpoint = base.checkpoint
            // A newer checkpoint key makes the stored checkpoint worthless: drop it. Only new
            // entries can certify one; without them the stored checkpoint still counts.
            if let kept = checkpoint, verifier.count != base.verifier.count {
                verifications += 1
                if try !kept.counts(against: verifier, now: now) { checkpoint = nil }
            }
            if !encodedCheckpoint.isEmpty {
                guard let candidate = try? Checkpoint(decoding: encodedCheckpoint) else { throw DirectoryError.malformedCheckpoint }
                verifications += 1
                try candidate.verify(against: verifier, now: now)
                if checkpoint.map({ candidate.time > $0.time }) ?? true { checkpoint = candidate }
            }
            return Verified(base: base, batch: batch, verifier: verifier, checkpoint: checkpoint)
        } catch {
            // A fork is told apart: met on a relay link, it is alarmed, not just refused.
            if error.code == DirectoryError.Rule.fork.rawValue {
                throw RelayError(.directoryRejected, code: "directory-fork", message: error.message)
            }
            throw .directoryRejected(error.message)
        }
    }

    /// Stores a verified publish if, and only if, it still extends what is stored (checked
    /// again, cheaply, if another publish was stored since its verification began): the
    /// file first, durably, then the new snapshot. Serialised, and short: no entry's
    /// signature is verified under the lock; only when another publish was stored meanwhile
    /// are the two candidate checkpoints checked again (at most two signatures, not counted
    /// in `directorySignaturesVerified`), and the newest that still counts is kept.
    public func commit(_ verified: Verified, now: UInt64) throws(RelayError) -> Published {
        committing.lock()
        defer { committing.unlock() }
        let before = snapshot
        var verifier = verified.verifier
        var checkpoint = verified.checkpoint
        if before.count != verified.base.count || before.checkpoint != verified.base.checkpoint {
            // Signatures depend only on each entry's own bytes, so they still hold; the rules
            // (sequence, chain, admins in force) are checked against the log as it is now.
            do throws(DirectoryError) {
                verifier = try PublishPrecheck.check(verified.batch.entries, against: before.verifier, now: now).verifier
                // The newest of the two that still counts (a newer checkpoint key in the log
                // makes an older key's checkpoint worthless).
                var counting: [Checkpoint] = []
                for candidate in [before.checkpoint, verified.checkpoint].compactMap({ $0 }) where try candidate.counts(against: verifier, now: now) {
                    counting.append(candidate)
                }
                checkpoint = counting.max { $0.time < $1.time }
            } catch {
                throw .directoryRejected(error.message)
            }
        }
        let added = verified.batch.newEntries(after: before.count)
        guard !added.isEmpty || checkpoint != before.checkpoint else {
            return Published(count: before.count, head: before.state.headHash, noLongerAdmitted: [], rehomed: [:], removedMembers: [], rotatedMembers: [])
        }
        let all = before.entries + added
        let next = Snapshot(verifier: verifier, entries: all, checkpoint: checkpoint, relayKey: relayKey)
        // Durable before anyone is told: the file first, then the snapshot.
        try Self.write(OrganisationBundle(entries: all, checkpoint: checkpoint), to: path)
        current.withLockedValue { $0 = next }
        let changed = before.admissions.keys.filter { next.admissions[$0] != before.admissions[$0] }
        var rehomed: [AgreementPublicKey: String] = [:]
        for key in changed {
            if let message = Self.rehoming(from: before.admissions[key], to: next.admissions[key], relayName: next.relayName) { rehomed[key] = message }
        }
        let dropped = changed.filter { rehomed[$0] == nil }
        let removed = before.state.members.values.filter { $0.isActive && next.state.members[$0.name]?.isActive != true }.map(\.name)
        let rotated = before.state.members.values.filter { old in
            guard old.isActive, let new = next.state.members[old.name], new.isActive else { return false }
            return new.identityKey != old.identityKey
        }.map(\.name)
        return Published(
            count: next.count, head: next.state.headHash, noLongerAdmitted: dropped, rehomed: rehomed, removedMembers: removed,
            rotatedMembers: rotated)
    }

    /// What a connected device is told when a move changed its role here, or nil when the
    /// change was not a move (a revocation, a rotation).
    static func rehoming(from before: Admission?, to after: Admission?, relayName: String?) -> String? {
        switch (before, after) {
        case (.device(let name)?, .notHome(let same, let home)?) where name == same:
            return RelayRequestProcessor.notHomeMessage(name, home: home)
        case (.notHome(let name, _)?, .device(let same)?) where name == same:
            return "\(name)'s home relay is now \(relayName ?? "this relay"): connect again"
        case (.notHome(let name, _)?, .notHome(let same, let home)?) where name == same:
            return RelayRequestProcessor.notHomeMessage(name, home: home)
        default:
            return nil
        }
    }

    static func read(_ path: String) throws(RelayError) -> OrganisationBundle {
        let bytes: [UInt8]
        do {
            bytes = try SecureFile.read(path, maximumByteCount: DirectoryFiles.maximumLogByteCount, access: .any)
        } catch {
            throw .storage(error.message)
        }
        do {
            return try OrganisationBundle(decoding: bytes)
        } catch {
            throw .storage("\(path): \(error.message)")
        }
    }

    static func write(_ bundle: OrganisationBundle, to path: String) throws(RelayError) {
        do {
            try SecureFile.writeAtomically(bundle.encoded(), to: path, mode: 0o644)
        } catch {
            throw .storage(error.message)
        }
    }
}
