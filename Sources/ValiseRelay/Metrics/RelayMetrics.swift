public import CoreMetrics
import NIOConcurrencyHelpers
import ValiseStore

/// The relay's metrics, through swift-metrics' API only: every metric is created once, here,
/// with a fixed name (`valise_…`, each documented in docs/OPERATIONS.md) and labels from
/// fixed sets (a role, a reason, a link state, a result), or a relay's name from the
/// directory. No label names a member, a key or an address. The hot path only increments
/// counters made here; the rest is read from the relay's own counts when metrics are
/// collected (`RelayServer.collectMetrics`), off the event loops. Without a bootstrapped
/// backend every metric is a no-op.
public final class RelayMetrics: Sendable {
    /// Roles of open connections: admitted devices, admins and relays linking in, and
    /// connections still in their handshake.
    public static let roles = ["device", "admin", "relay", "handshaking"]
    /// Relay link states (`LinkStatusFile.Link.state`).
    public static let linkStates = ["waiting", "connecting", "handshaking", "up", "stopped"]
    /// Counts of `LimitCounters` that are refusals or holds, by reason (the work count
    /// `directorySignaturesVerified` has a metric of its own).
    public static let refusalReasons = LimitCounters.Limit.allCases.filter { $0 != .directorySignaturesVerified }

    /// The commit histograms' buckets, for the backend (swift-metrics carries none): batch
    /// sizes in requests, latencies in seconds.
    public static let commitBatchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    public static let commitSecondsBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
    ]
    public static let commitBatchLabel = "valise_commit_batch_size"
    public static let commitSecondsLabel = "valise_commit_seconds"

    let factory: any MetricsFactory

    // Counted where they happen.
    let connectionsAccepted: Counter
    let handshakesCompleted: Counter
    let deliveries: Counter
    let commitBatchSize: Recorder
    let commitSeconds: CoreMetrics.Timer

    // Mirrored from the relay's counts when collected.
    let handshakesFailed: Counter
    let refusals: [LimitCounters.Limit: Counter]
    let signaturesVerified: Counter
    let sendsAccepted: Counter
    let acknowledged: Counter
    let forwardsCompleted: Counter

    // Gauges set when collected.
    let connectionsOpen: [String: Gauge]
    let links: [String: Gauge]
    let queueEnvelopes: Gauge
    let queueBytes: Gauge
    let queueOldestAge: Gauge
    let queueMailboxes: Gauge
    /// Attachment blobs held (complete or not), their declared bytes, and forwards waiting.
    let blobs: Gauge
    let blobBytes: Gauge
    let blobForwardsWaiting: Gauge
    let checkpointPresent: Gauge
    let checkpointAge: Gauge
    let checkpointWarnAfter: Gauge
    let checkpointRefuseAfter: Gauge

    /// What was mirrored last, so that counters grow by the difference.
    struct Mirrored {
        var limits: [LimitCounters.Limit: Int] = [:]
        var commits = GroupCommitWriter.Counters()
        /// Forwarding gauges, by destination relay, created when a destination first has a backlog.
        var forwarding: [String: (envelopes: Gauge, bytes: Gauge, oldestAge: Gauge)] = [:]
        /// When the store's figures were last read (monotonic nanoseconds), if ever.
        var storeRead: UInt64?
    }

    let mirrored = NIOLockedValueBox(Mirrored())
    /// Held for a whole collection: two scrapes at once must not interleave their reads
    /// and set a counter's baseline or a gauge back to an older value.
    let collecting = NIOLock()

    /// - `factory`: the backend; by default the one valised bootstrapped (a no-op if none).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        connectionsAccepted = Counter(label: "valise_connections_accepted_total", factory: factory)
        handshakesCompleted = Counter(label: "valise_handshakes_total", dimensions: [("result", "completed")], factory: factory)
        handshakesFailed = Counter(label: "valise_handshakes_total", dimensions: [("result", "failed")], factory: factory)
        deliveries = Counter(label: "valise_deliveries_total", factory: factory)
        commitBatchSize = Recorder(label: Self.commitBatchLabel, aggregate: true, factory: factory)
        commitSeconds = CoreMetrics.Timer(label: Self.commitSecondsLabel, factory: factory)
        refusals = Dictionary(uniqueKeysWithValues: Self.refusalReasons.map {
            ($0, Counter(label: "valise_refusals_total", dimensions: [("reason", $0.rawValue)], factory: factory))
        })
        signaturesVerified = Counter(label: "valise_directory_signatures_verified_total", factory: factory)
        sendsAccepted = Counter(label: "valise_sends_accepted_total", factory: factory)
        acknowledged = Counter(label: "valise_acks_total", factory: factory)
        forwardsCompleted = Counter(label: "valise_forwards_completed_total", factory: factory)
        connectionsOpen = Dictionary(uniqueKeysWithValues: Self.roles.map {
            ($0, Gauge(label: "valise_connections_open", dimensions: [("role", $0)], factory: factory))
        })
        links = Dictionary(uniqueKeysWithValues: Self.linkStates.map {
            ($0, Gauge(label: "valise_relay_links", dimensions: [("state", $0)], factory: factory))
        })
        queueEnvelopes = Gauge(label: "valise_queue_envelopes", factory: factory)
        queueBytes = Gauge(label: "valise_queue_bytes", factory: factory)
        queueOldestAge = Gauge(label: "valise_queue_oldest_age_seconds", factory: factory)
        queueMailboxes = Gauge(label: "valise_queue_mailboxes", factory: factory)
        blobs = Gauge(label: "valise_blobs", factory: factory)
        blobBytes = Gauge(label: "valise_blob_bytes", factory: factory)
        blobForwardsWaiting = Gauge(label: "valise_blob_forwards_waiting", factory: factory)
        checkpointPresent = Gauge(label: "valise_checkpoint_present", factory: factory)
        checkpointAge = Gauge(label: "valise_checkpoint_age_seconds", factory: factory)
        checkpointWarnAfter = Gauge(label: "valise_checkpoint_warn_after_seconds", factory: factory)
        checkpointRefuseAfter = Gauge(label: "valise_checkpoint_refuse_after_seconds", factory: factory)
    }
}
