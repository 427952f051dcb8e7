import NIOConcurrencyHelpers
import NIOCore
import ValiseCrypto
import ValiseDirectory
import ValiseStore

extension RelayServer {
    /// The store's figures are read at most this often, however often metrics are collected.
    static let metricsStoreInterval = TimeAmount.seconds(Int64(1))

    /// Brings the gauges and the mirrored counters up to date: call it before each scrape,
    /// off the event loops (it may read the store). Nothing here names a member, a key or
    /// an address: connections are counted by role, links by state.
    public func collectMetrics() {
        metrics.collecting.withLock {
            metrics.mirror(limits: counters.snapshot, commits: writer.currentCounters)

            let snapshot = directory.snapshot
            var byRole: [String: Int] = [:]
            var admitted = 0
            for (role, count) in registry.openByRole {
                byRole[role.rawValue] = count
                admitted += count
            }
            byRole["handshaking"] = max(0, limiter.openConnections - admitted)
            metrics.record(connections: byRole)

            let context = sharedContext.withLockedValue { $0 }
            metrics.record(linkStates: context?.federation?.status.map(\.state) ?? [])
            let now = WallClock.seconds()
            metrics.record(checkpointTime: snapshot.checkpoint?.time, now: now, freshness: snapshot.state.freshness)

            let interval = UInt64(Self.metricsStoreInterval.nanoseconds)
            guard metrics.claimStoreRead(monotonic: NIODeadline.now().uptimeNanoseconds, intervalNanoseconds: interval) else { return }
            guard let queue = try? store.statistics(now: now), let forwarding = try? store.forwardingBacklog(now: now) else { return }
            metrics.record(queue: queue, forwarding: forwarding)
            if let statistics = try? blobStore?.blobStatistics(now: now) { metrics.record(blobs: statistics) }
        }
    }
}
