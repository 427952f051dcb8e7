import Prometheus
import Testing
import ValiseDirectory
import ValiseStore
@testable import ValiseRelay

/// RelayMetrics on a Prometheus registry of its own (no global bootstrap): counters mirrored
/// from the relay's counts grow by the difference, gauges take the current value, and the
/// forwarding gauges of a relay whose queue emptied go to 0.
@Suite("Metrics: the relay's metrics in the exposition format")
struct RelayMetricsTests {
    static func metrics() -> (RelayMetrics, PrometheusCollectorRegistry) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[RelayMetrics.commitSecondsLabel] = RelayMetrics.commitSecondsBuckets
        factory.valueHistogramBuckets[RelayMetrics.commitBatchLabel] = RelayMetrics.commitBatchBuckets
        return (RelayMetrics(factory: factory), registry)
    }

    static func lines(_ registry: PrometheusCollectorRegistry) -> Set<String> {
        Set(registry.emitToString().split(separator: "\n").map(String.init))
    }

    @Test("mirrored counters grow by the difference; refusals by reason from the fixed set")
    func mirrored() {
        let (metrics, registry) = Self.metrics()
        var commits = GroupCommitWriter.Counters()
        commits.acceptedEnvelopes = 7
        commits.acknowledgedEnvelopes = 3
        metrics.mirror(limits: [.sendRate: 2, .handshakeFailed: 1, .unknownRelayKey: 4, .directorySignaturesVerified: 9], commits: commits)
        commits.acceptedEnvelopes = 10
        metrics.mirror(limits: [.sendRate: 5, .handshakeFailed: 1, .unknownRelayKey: 4, .directorySignaturesVerified: 9], commits: commits)
        let lines = Self.lines(registry)
        #expect(lines.contains("valise_sends_accepted_total 10"))
        #expect(lines.contains("valise_acks_total 3"))
        #expect(lines.contains(#"valise_refusals_total{reason="sendRate"} 5"#))
        #expect(lines.contains(#"valise_refusals_total{reason="mailboxFull"} 0"#))
        #expect(lines.contains(#"valise_handshakes_total{result="failed"} 5"#))
        #expect(lines.contains("valise_directory_signatures_verified_total 9"))
        #expect(!lines.contains { $0.contains(#"reason="directorySignaturesVerified""#) })
        let reasons = lines.filter { $0.hasPrefix("valise_refusals_total{") }.count
        #expect(reasons == LimitCounters.Limit.allCases.count - 1)
    }

    @Test("gauges: connections by role, links by state, queue, forwarding by relay, checkpoint and its bounds")
    func gauges() {
        let (metrics, registry) = Self.metrics()
        metrics.record(connections: ["device": 3, "admin": 1, "handshaking": 2])
        metrics.record(linkStates: ["up", "up", "waiting", "something-new"])
        var queue = QueueStatistics()
        queue.countByPrecedence = [.routine: 4, .flash: 1]
        queue.bytes = 5000
        queue.oldestAge = 42
        queue.mailboxes = 2
        metrics.record(queue: queue, forwarding: ["geneva": ForwardingBacklog(count: 6, bytes: 600, oldestAge: 90)])
        metrics.record(checkpointTime: 1_000, now: 4_600, freshness: FreshnessPolicy(warnAfterSeconds: 86_400, refuseAfterSeconds: 259_200))
        var lines = Self.lines(registry)
        for expected in [
            #"valise_connections_open{role="device"} 3.0"#, #"valise_connections_open{role="relay"} 0.0"#,
            #"valise_connections_open{role="handshaking"} 2.0"#, #"valise_relay_links{state="up"} 2.0"#,
            #"valise_relay_links{state="waiting"} 1.0"#, #"valise_relay_links{state="stopped"} 0.0"#,
            "valise_queue_envelopes 5.0", "valise_queue_bytes 5000.0", "valise_queue_oldest_age_seconds 42.0", "valise_queue_mailboxes 2.0",
            #"valise_forwarding_envelopes{relay="geneva"} 6.0"#, #"valise_forwarding_oldest_age_seconds{relay="geneva"} 90.0"#,
            "valise_checkpoint_present 1.0", "valise_checkpoint_age_seconds 3600.0",
            "valise_checkpoint_warn_after_seconds 86400.0", "valise_checkpoint_refuse_after_seconds 259200.0",
        ] {
            #expect(lines.contains(expected), "missing \(expected) in \(lines.sorted())")
        }
        #expect(!lines.contains { $0.contains("something-new") }, "a state outside the fixed set is not a label")

        metrics.record(queue: QueueStatistics(), forwarding: [:])
        metrics.record(checkpointTime: nil, now: 4_600, freshness: FreshnessPolicy(warnAfterSeconds: 1, refuseAfterSeconds: 2))
        lines = Self.lines(registry)
        #expect(lines.contains(#"valise_forwarding_envelopes{relay="geneva"} 0.0"#), "an emptied queue shows 0")
        #expect(lines.contains("valise_checkpoint_present 0.0"))
    }

    @Test("commits: batch sizes and latencies as histograms with the relay's buckets")
    func commits() {
        let (metrics, registry) = Self.metrics()
        metrics.committed(requests: 1, seconds: 0.0003)
        metrics.committed(requests: 40, seconds: 0.004)
        let lines = Self.lines(registry)
        #expect(lines.contains("valise_commit_batch_size_count 2"))
        #expect(lines.contains("valise_commit_batch_size_sum 41.0"))
        #expect(lines.contains(#"valise_commit_batch_size_bucket{le="1.0"} 1"#))
        #expect(lines.contains(#"valise_commit_batch_size_bucket{le="64.0"} 2"#))
        #expect(lines.contains("valise_commit_seconds_count 2"))
        #expect(lines.contains(#"valise_commit_seconds_bucket{le="0.0005"} 1"#))
        #expect(lines.contains(#"valise_commit_seconds_bucket{le="0.005"} 2"#))
    }

    @Test("the store's figures are read at most once per interval")
    func storeReadThrottle() {
        let (metrics, _) = Self.metrics()
        #expect(metrics.claimStoreRead(monotonic: 10_000, intervalNanoseconds: 1_000))
        #expect(!metrics.claimStoreRead(monotonic: 10_500, intervalNanoseconds: 1_000))
        #expect(metrics.claimStoreRead(monotonic: 11_000, intervalNanoseconds: 1_000))
    }
}
