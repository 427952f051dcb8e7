public import ValiseDirectory

extension RelayDirectory {
    /// What `valised status` shows of the pinned directory: its length, its newest
    /// checkpoint and the organisation's freshness bounds.
    public struct Pinned: Sendable {
        public let entries: Int
        public let checkpoint: Checkpoint?
        public let freshness: FreshnessPolicy
    }

    /// Reads `DIR/organisation.bundle` as the relay stored it (verified when it was stored;
    /// not verified again here: a status is a look, not a check). Nil when there is none or
    /// it does not parse.
    public static func pinned(directory: String) -> Pinned? {
        guard let bundle = try? read(directory + "/organisation.bundle"),
              case .genesis(let genesis) = bundle.entries[0].body else { return nil }
        return Pinned(entries: bundle.entries.count, checkpoint: bundle.checkpoint, freshness: genesis.freshness)
    }
}
