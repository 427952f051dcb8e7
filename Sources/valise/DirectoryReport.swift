import ValiseClient
import ValiseCrypto
import ValiseDirectory

/// A directory state as people read it (`valise admin show`, `valise directory verify`),
/// or as JSON with the same fields.
struct DirectoryReport: Encodable {
    struct Admin: Encodable {
        let name: String
        let fingerprint: String
        let signingKey: String
        let transportKey: String
    }

    struct MemberEntry: Encodable {
        let name: String
        let mission: String
        let role: String
        let fingerprint: String
        let identityKey: String
        let transportKey: String
        let enrolledAt: UInt64
        let status: String
        let revokedAt: UInt64?
        let revocationReason: String?
        let rotations: Int
        /// The member's home relay (named, or the default relay); nil when no relay is listed.
        let homeRelay: String?
        /// True when no enroll-at-home or move entry named the home: it is the default relay.
        let homeIsDefault: Bool
    }

    struct Relay: Encodable {
        let name: String
        /// The first address (kept for scripts that read one).
        let address: String
        /// Every address, in the order devices and relays try them.
        let addresses: [String]
        let noiseKey: String
        let signingKey: String
        /// The relay added first: the home of members whose home no entry named.
        let isDefault: Bool
    }

    struct CheckpointInfo: Encodable {
        let sequence: UInt64
        let time: String
        let ageSeconds: Int64
        let stale: String?
    }

    let organisation: String
    let genesis: String
    let entries: Int
    let headHash: String
    let headTime: String
    let threshold: Int
    let admins: [Admin]
    let members: [MemberEntry]
    let revokedKeys: Int
    let relays: [Relay]
    let checkpointKey: String?
    /// When the checkpoint key's certification ends ("none": kind 8, its checkpoints never count).
    let checkpointKeyNotAfter: String?
    let checkpoint: CheckpointInfo?
    let warnAfter: String
    let refuseAfter: String

    init(state: DirectoryState, checkpoint: Checkpoint?, now: UInt64) {
        organisation = state.organisation
        genesis = state.genesisHash.hex
        entries = Int(state.headSequence) + 1
        headHash = state.headHash.hex
        headTime = Timestamp.rfc3339(state.headTimestamp)
        threshold = Int(state.admins.threshold)
        admins = state.admins.admins.map { admin in
            Admin(
                name: admin.name,
                fingerprint: Fingerprint(identityKey: admin.signingKey, memberName: admin.name).description,
                signingKey: Hex.encode(admin.signingKey.bytes), transportKey: Hex.encode(admin.transportKey.bytes))
        }
        members = state.members.values.sorted { $0.name < $1.name }.map { member in
            var revokedAt: UInt64?
            var reason: String?
            if case .revoked(let why, let sequence) = member.status {
                revokedAt = sequence
                reason = why
            }
            return MemberEntry(
                name: member.name.value, mission: member.mission, role: member.role,
                fingerprint: member.fingerprint.description, identityKey: Hex.encode(member.identityKey.bytes),
                transportKey: Hex.encode(member.transportKey.bytes), enrolledAt: member.enrolledAt,
                status: member.isActive ? "active" : "revoked", revokedAt: revokedAt, revocationReason: reason,
                rotations: member.retiredKeys.count, homeRelay: state.homeRelay(of: member.name)?.name,
                homeIsDefault: member.home == nil)
        }
        revokedKeys = state.revokedKeys.count
        relays = state.relays.values.sorted { $0.name < $1.name }.map { relay in
            Relay(
                name: relay.name, address: relay.address, addresses: relay.addresses, noiseKey: Hex.encode(relay.noiseKey.bytes),
                signingKey: Hex.encode(relay.signingKey.bytes), isDefault: relay.name == state.defaultRelay?.name)
        }
        checkpointKey = state.checkpointKey.map { Hex.encode($0.bytes) }
        checkpointKeyNotAfter = state.checkpointKeys.last.map { $0.notAfter.map(Timestamp.rfc3339) ?? "none" }
        self.checkpoint = checkpoint.map { checkpoint in
            let age = Int64(clamping: now) - Int64(clamping: checkpoint.time)
            let stale: String? = age > Int64(state.freshness.refuseAfterSeconds)
                ? "older than the refusal bound"
                : age > Int64(state.freshness.warnAfterSeconds) ? "older than the warning bound" : nil
            return CheckpointInfo(sequence: checkpoint.sequence, time: Timestamp.rfc3339(checkpoint.time), ageSeconds: age, stale: stale)
        }
        warnAfter = DurationArgument.describe(state.freshness.warnAfterSeconds)
        refuseAfter = DurationArgument.describe(state.freshness.refuseAfterSeconds)
    }

    var lines: [String] {
        var lines = [
            "organisation:  \(organisation)",
            "genesis:       \(genesis)",
            "head:          entry \(entries - 1) of \(entries), \(headHash.prefix(16))…, \(headTime)",
            "freshness:     warn after \(warnAfter), refuse after \(refuseAfter) without a checkpoint",
            "admins (\(threshold) of \(admins.count) must sign):",
        ]
        lines += admins.map { "  \(pad($0.name, 20)) \($0.fingerprint)" }
        let active = members.filter { $0.status == "active" }
        let revoked = members.filter { $0.status != "active" }
        lines.append("members (\(active.count)):")
        lines += active.map { member in
            let rotated = member.rotations > 0 ? "  (keys rotated \(member.rotations)×)" : ""
            return "  \(pad(member.name, 24)) \(pad(member.mission, 24)) \(pad(member.role, 12)) \(pad(member.homeLabel, 16)) \(member.fingerprint)\(rotated)"
        }
        if active.contains(where: { $0.homeIsDefault && $0.homeRelay != nil }) {
            lines.append("  (* homed at the default relay: no entry named a home)")
        }
        if !revoked.isEmpty {
            lines.append("revoked (\(revoked.count)):")
            lines += revoked.map { "  \(pad($0.name, 24)) at entry \($0.revokedAt ?? 0): \($0.revocationReason ?? "")" }
        }
        lines.append("relays (\(relays.count)):")
        lines += relays.map { relay in
            let name = relay.isDefault ? "\(relay.name) (default)" : relay.name
            return "  \(pad(name, 26)) noise key \(relay.noiseKey.prefix(16))…  \(relay.addresses.joined(separator: ", "))"
        }
        if let checkpointKey { lines.append("checkpoint key: \(checkpointKey.prefix(16))… not after \(checkpointKeyNotAfter ?? "none")") }
        if let checkpoint {
            lines.append("checkpoint:    entry \(checkpoint.sequence) at \(checkpoint.time)\(checkpoint.stale.map { " — \($0)" } ?? "")")
        }
        return lines
    }

    private func pad(_ text: String, _ width: Int) -> String { padColumn(text, width) }
}

extension DirectoryReport.MemberEntry {
    /// "home hq", or "home hq*" when hq is the default relay and no entry named it.
    var homeLabel: String { Self.homeLabel(homeRelay, isDefault: homeIsDefault) }

    static func homeLabel(_ homeRelay: String?, isDefault: Bool) -> String {
        guard let homeRelay else { return "no home relay" }
        return "home \(homeRelay)\(isDefault ? "*" : "")"
    }
}
