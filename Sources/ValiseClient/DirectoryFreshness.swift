public import ValiseDirectory

/// How current the device's directory is, judged by its newest signed checkpoint against
/// the organisation's bounds: past the first, a warning; past the second, ordinary sends
/// are refused (FLASH still goes), so a relay cannot hide a revocation for long. In an
/// organisation of several relays, a mission cut off from headquarters gets no fresh
/// checkpoint: there, past the second bound, ordinary messages to members homed at the
/// sender's own relay still go (with the warning) and the others wait in the outbox until
/// a fresh checkpoint arrives (docs/SECURITY.md, "A mission cut off").
public struct DirectoryFreshness: Sendable {
    public let checkpointAge: Int64?
    public let policy: FreshnessPolicy
    /// Whether the organisation certified a checkpoint key (without one, there is nothing
    /// to judge by, and nothing is refused).
    public let checkpointsExpected: Bool
    /// Whether the organisation lists more than one relay: then past the hard bound
    /// ordinary messages are held per recipient (`waits`) instead of refused.
    public let federated: Bool

    public init(_ loaded: PinnedOrganisation.Loaded, now: UInt64) {
        policy = loaded.state.freshness
        checkpointsExpected = loaded.state.checkpointKey != nil
        checkpointAge = loaded.bundle.checkpoint.map { Int64(clamping: now) - Int64(clamping: $0.time) }
        federated = loaded.state.relays.count > 1
    }

    /// Whether composing an ordinary message is refused outright: past the hard bound in an
    /// organisation of one relay (as before relays federated).
    public var refusesComposing: Bool { refusesOrdinarySends && !federated }

    /// Whether an ordinary message from `sender` to `recipient` waits in the outbox for a
    /// fresh checkpoint: past the hard bound, in an organisation of several relays, when the
    /// two are not homed at the same relay. The sender's relay serves the directory the
    /// sender sees, and a revocation of a colleague homed there is published there too; a
    /// revocation elsewhere may not have reached a cut-off mission, so nothing is sealed to
    /// a member homed elsewhere on its word.
    public func waits(from sender: MemberName, to recipient: MemberName, in state: DirectoryState) -> Bool {
        guard refusesOrdinarySends, federated else { return false }
        guard let home = state.homeRelay(of: sender) else { return true }
        return state.homeRelay(of: recipient)?.name != home.name
    }

    public var warns: Bool {
        guard checkpointsExpected else { return false }
        guard let checkpointAge else { return true }
        return checkpointAge > Int64(policy.warnAfterSeconds)
    }

    public var refusesOrdinarySends: Bool {
        guard checkpointsExpected else { return false }
        guard let checkpointAge else { return true }
        return checkpointAge > Int64(policy.refuseAfterSeconds)
    }

    /// One sentence for a warning, or nil when the directory is fresh.
    public var warning: String? { warns ? description : nil }

    public var description: String {
        guard let checkpointAge else {
            return "the relay has no checkpoint: this device cannot tell whether the directory is current"
        }
        return "the newest checkpoint is \(checkpointAge / 3600) hours old (the organisation warns after \(Timestamp.duration(policy.warnAfterSeconds)) and refuses ordinary messages after \(Timestamp.duration(policy.refuseAfterSeconds))): the relay may be showing an old directory"
    }
}
