public import ValiseDirectory

/// How current the device's directory is, judged by its newest signed checkpoint against
/// the organisation's bounds: past the first, a warning; past the second, ordinary sends
/// are refused (FLASH still goes), so a relay cannot hide a revocation for long.
public struct DirectoryFreshness: Sendable {
    public let checkpointAge: Int64?
    public let policy: FreshnessPolicy
    /// Whether the organisation certified a checkpoint key (without one, there is nothing
    /// to judge by, and nothing is refused).
    public let checkpointsExpected: Bool

    public init(_ loaded: PinnedOrganisation.Loaded, now: UInt64) {
        policy = loaded.state.freshness
        checkpointsExpected = loaded.state.checkpointKey != nil
        checkpointAge = loaded.bundle.checkpoint.map { Int64(clamping: now) - Int64(clamping: $0.time) }
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
