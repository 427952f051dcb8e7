import CoreMetrics
import NIOConcurrencyHelpers
import ValiseDirectory
public import ValiseStore

/// The commit histograms, fed by the store's writer thread.
extension RelayMetrics: CommitObserver {
    public func committed(requests: Int, seconds: Double) {
        commitBatchSize.record(requests)
        commitSeconds.recordNanoseconds(Int64((seconds * 1e9).rounded()))
    }
}

/// Figures the relay keeps anyway, turned into metrics when they are collected: counters
/// grow by what changed since the last collection, gauges take the current value.
extension RelayMetrics {
    /// The limits' counts and the writer's counts since the relay started.
    func mirror(limits: [LimitCounters.Limit: Int], commits current: GroupCommitWriter.Counters) {
        let (previousLimits, previousCommits) = mirrored.withLockedValue { state in
            defer { (state.limits, state.commits) = (limits, current) }
            return (state.limits, state.commits)
        }
        func grow(_ counter: Counter, _ now: Int, _ before: Int) {
            if now > before { counter.increment(by: now - before) }
        }
        for (limit, counter) in refusals { grow(counter, limits[limit] ?? 0, previousLimits[limit] ?? 0) }
        grow(signaturesVerified, limits[.directorySignaturesVerified] ?? 0, previousLimits[.directorySignaturesVerified] ?? 0)
        // A handshake failed when the first message did not decrypt (a wrong pin, or not
        // Valise at all) or a later one did not.
        let failed: ([LimitCounters.Limit: Int]) -> Int = { ($0[.handshakeFailed] ?? 0) + ($0[.unknownRelayKey] ?? 0) }
        grow(handshakesFailed, failed(limits), failed(previousLimits))
        grow(sendsAccepted, current.acceptedEnvelopes, previousCommits.acceptedEnvelopes)
        grow(acknowledged, current.acknowledgedEnvelopes, previousCommits.acknowledgedEnvelopes)
        grow(forwardsCompleted, current.completedForwards, previousCommits.completedForwards)
    }

    /// Open connections by role (`RelayMetrics.roles`); a role not given has none.
    func record(connections: [String: Int]) {
        for (role, gauge) in connectionsOpen { gauge.record(connections[role] ?? 0) }
    }

    /// Relay links by state; a state not in `linkStates` is not shown (a newer build's).
    func record(linkStates: [String]) {
        for (state, gauge) in links { gauge.record(linkStates.count { $0 == state }) }
    }

    /// The newest checkpoint's age at `now` (seconds since 1970), and the organisation's
    /// bounds, so that an alert compares the two without a constant of its own.
    func record(checkpointTime: UInt64?, now: UInt64, freshness: FreshnessPolicy) {
        checkpointPresent.record(checkpointTime == nil ? 0 : 1)
        checkpointAge.record(checkpointTime.map { now > $0 ? now - $0 : 0 } ?? 0)
        checkpointWarnAfter.record(freshness.warnAfterSeconds)
        checkpointRefuseAfter.record(freshness.refuseAfterSeconds)
    }

    /// Whether the store's figures are due to be read again at `monotonic` nanoseconds: at
    /// most once per `interval`, so that scrapes in a loop cannot keep the store busy.
    /// Claims the read when it is due.
    func claimStoreRead(monotonic: UInt64, intervalNanoseconds: UInt64) -> Bool {
        mirrored.withLockedValue { state in
            if let last = state.storeRead, monotonic < last + intervalNanoseconds { return false }
            state.storeRead = monotonic
            return true
        }
    }

    /// The blobs' figures (never an id).
    func record(blobs statistics: BlobStatistics) {
        blobs.record(statistics.count)
        blobBytes.record(statistics.bytes)
        blobForwardsWaiting.record(statistics.forwardsWaiting)
    }

    /// The local queue and each forwarding queue, by destination relay. A relay name is
    /// directory data an admin chose for a machine, not a member's, a key or an address; a
    /// destination that emptied shows 0 rather than vanishing.
    func record(queue: QueueStatistics, forwarding: [String: ForwardingBacklog]) {
        queueEnvelopes.record(queue.count)
        queueBytes.record(queue.bytes)
        queueOldestAge.record(queue.oldestAge)
        queueMailboxes.record(queue.mailboxes)
        let gauges = mirrored.withLockedValue { state in
            for relay in forwarding.keys where state.forwarding[relay] == nil {
                let labels = [("relay", relay)]
                state.forwarding[relay] = (
                    Gauge(label: "valise_forwarding_envelopes", dimensions: labels, factory: factory),
                    Gauge(label: "valise_forwarding_bytes", dimensions: labels, factory: factory),
                    Gauge(label: "valise_forwarding_oldest_age_seconds", dimensions: labels, factory: factory))
            }
            return state.forwarding
        }
        for (relay, gauge) in gauges {
            let backlog = forwarding[relay] ?? ForwardingBacklog()
            gauge.envelopes.record(backlog.count)
            gauge.bytes.record(backlog.bytes)
            gauge.oldestAge.record(backlog.oldestAge)
        }
    }
}
