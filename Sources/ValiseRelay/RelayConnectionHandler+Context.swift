import CoreMetrics
import NIOCore
import NIOPosix
import ValiseCrypto
import ValiseDirectory
import ValiseStore

extension RelayConnectionHandler {
    /// What every connection shares: one reference per connection, not a copy of each field
    /// (the difference is a few hundred bytes a connection, with ten thousand held).
    final class Context: Sendable {
        let keys: RelayKeys
        let directory: RelayDirectory
        let registry: ConnectionRegistry
        let limiter: ConnectionLimiter
        let limits: RelayConfiguration.Limits
        let queue: RelayConfiguration.Queue
        let threadPool: NIOThreadPool
        let store: any EnvelopeStore
        let prekeys: any PrekeyStore
        let prekeyDispenser: PrekeyDispenser
        let sends: DeviceRateLimiter
        /// Directory publishes, per publishing key.
        let publishes: DeviceRateLimiter
        /// Verifies and stores publishes, on a thread of its own, fairly per key.
        let publisher: DirectoryPublisher
        /// What the limits refused or held back, for `valised status`.
        let counters: LimitCounters
        /// Whether the store is refusing for want of space (logged when that changes).
        let storage: StorageWatch
        let writer: GroupCommitWriter
        let mailboxes: MailboxRegistry
        /// Hands the writer's completions to event loops, one task per loop per commit.
        let handoff: LoopHandoff
        let clock: @Sendable () -> UInt64
        /// Called with the members that a publish took out of the directory.
        let onMembersRemoved: @Sendable ([MemberName]) -> Void
        /// Called with the members whose identity key a publish rotated; returns once their
        /// old prekeys are deleted.
        let onMembersRotated: @Sendable ([MemberName]) -> Void
        /// The relay's links to other relays.
        let federation: Federation?
        /// The relay's metrics: handshakes and deliveries are counted where they happen.
        let metrics: RelayMetrics
        /// Set when several nodes share the store: connections lease what they deliver, and
        /// the node may have lost the store (UNAVAILABLE).
        let node: SharedNode?
        /// Attachment blobs: their store, quotas and ledger (nil: the relay takes none).
        let blobs: RelayBlobs?
        /// Whether links are on (`links` in valised.yaml); off, channel-2 connections close.
        var linksEnabled: Bool { federation != nil }

        init(
            keys: RelayKeys,
            directory: RelayDirectory,
            registry: ConnectionRegistry,
            limiter: ConnectionLimiter,
            limits: RelayConfiguration.Limits,
            queue: RelayConfiguration.Queue,
            threadPool: NIOThreadPool,
            store: any EnvelopeStore,
            prekeys: any PrekeyStore,
            prekeyDispenser: PrekeyDispenser,
            sends: DeviceRateLimiter,
            publishes: DeviceRateLimiter,
            publisher: DirectoryPublisher,
            counters: LimitCounters,
            storage: StorageWatch,
            writer: GroupCommitWriter,
            mailboxes: MailboxRegistry,
            handoff: LoopHandoff,
            clock: @escaping @Sendable () -> UInt64,
            onMembersRemoved: @escaping @Sendable ([MemberName]) -> Void,
            onMembersRotated: @escaping @Sendable ([MemberName]) -> Void,
            federation: Federation? = nil,
            metrics: RelayMetrics = RelayMetrics(factory: NOOPMetricsHandler.instance),
            node: SharedNode? = nil,
            blobs: RelayBlobs? = nil
        ) {
            self.keys = keys
            self.directory = directory
            self.registry = registry
            self.limiter = limiter
            self.limits = limits
            self.queue = queue
            self.threadPool = threadPool
            self.store = store
            self.prekeys = prekeys
            self.prekeyDispenser = prekeyDispenser
            self.sends = sends
            self.publishes = publishes
            self.publisher = publisher
            self.counters = counters
            self.storage = storage
            self.writer = writer
            self.mailboxes = mailboxes
            self.handoff = handoff
            self.clock = clock
            self.onMembersRemoved = onMembersRemoved
            self.onMembersRotated = onMembersRotated
            self.federation = federation
            self.metrics = metrics
            self.node = node
            self.blobs = blobs
        }

        /// What a stored publish (an admin's, or entries from a relay link) sets off: keys no
        /// longer admitted lose their connections, removed members their queues, rotated
        /// members the prekeys their old identity key signed, and the relay links pass the
        /// entries on and move mail after members who moved.
        func applyPublished(_ published: RelayDirectory.Published) {
            registry.drop(changedBy: published)
            if !published.removedMembers.isEmpty { onMembersRemoved(published.removedMembers) }
            if !published.rotatedMembers.isEmpty { onMembersRotated(published.rotatedMembers) }
            federation?.directoryChanged()
        }
    }
}
