import Synchronization
import ValiseStore

/// A store shared by several relay nodes, as the relay sees one, made of an SQLite queue: leases
/// in memory, announcements the test sends itself, a directory log in memory, and a switch
/// that makes every call fail as a lost database does (`StoreError.Kind.unavailable`).
final class SharedTestStore: EnvelopeStore, PrekeyStore, SharedQueue, SharedDirectoryLog {
    struct Leases {
        /// Who holds each leased envelope.
        var held: [MessageID: LeaseHolder] = [:]
        /// Every holder that asked for envelopes, in order.
        var holders: [LeaseHolder] = []
        /// Every holder whose leases were given back, in order.
        var released: [LeaseHolder] = []
        var renewals = 0
    }

    let inner: SQLiteEnvelopeStore
    let node = "test-node"
    let leases = Mutex(Leases())
    let log = Mutex<[[UInt8]]>([])
    /// Every entry the log handed out, in order.
    let served = Mutex<[[UInt8]]>([])
    let failing = Mutex(false)
    private let stream = Mutex<AsyncStream<QueueChange>.Continuation?>(nil)

    init(inner: SQLiteEnvelopeStore) {
        self.inner = inner
    }

    /// Announces `change` as the database would (to a relay that listens).
    func announce(_ change: QueueChange) {
        _ = stream.withLock { $0 }?.yield(change)
    }

    private func check() throws(StoreError) {
        if failing.withLock({ $0 }) { throw StoreError(.unavailable, "the test database is down") }
    }

    // MARK: SharedQueue

    func leaseForDelivery(mailbox: Mailbox, holder: LeaseHolder, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [StoredEnvelope] {
        try check()
        let others = leases.withLock { leases in
            leases.holders.append(holder)
            return Set(leases.held.filter { $0.value != holder }.keys)
        }
        let envelopes = try inner.nextForDelivery(mailbox: mailbox, excluding: excluding.union(others), limit: limit, now: now)
        leases.withLock { leases in for envelope in envelopes { leases.held[envelope.id] = holder } }
        return envelopes
    }

    func leaseForForwarding(destination: String, holder: LeaseHolder, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [OutgoingEnvelope] {
        try check()
        return try inner.nextForForwarding(destination: destination, excluding: excluding, limit: limit, now: now)
    }

    func releaseLeases(of holder: LeaseHolder) throws(StoreError) {
        try check()
        leases.withLock { leases in
            leases.held = leases.held.filter { $0.value != holder }
            leases.released.append(holder)
        }
    }

    func renewLeases(of connections: [UInt64], now: UInt64) throws(StoreError) {
        try check()
        leases.withLock { $0.renewals += 1 }
    }

    func changes() -> AsyncStream<QueueChange> {
        let (changes, continuation) = AsyncStream<QueueChange>.makeStream()
        stream.withLock { $0 = continuation }
        return changes
    }

    // MARK: SharedDirectoryLog

    func directoryEntries(from start: Int, limit: Int) throws(StoreError) -> [[UInt8]] {
        try check()
        let entries = log.withLock { log in Array(log.dropFirst(start).prefix(limit)) }
        served.withLock { $0 += entries }
        return entries
    }

    func appendDirectoryEntries(_ entries: [[UInt8]], from start: Int) throws(StoreError) -> Int {
        try check()
        return log.withLock { log in
            guard start <= log.count else { return 0 }
            let new = entries.dropFirst(log.count - start)
            log += new
            return new.count
        }
    }

    // MARK: EnvelopeStore, as SQLite

    func accept(_ envelopes: [IncomingEnvelope], now: UInt64) throws(StoreError) -> [AcceptOutcome] {
        try check()
        return try inner.accept(envelopes, now: now)
    }

    func nextForDelivery(mailbox: Mailbox, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [StoredEnvelope] {
        try check()
        return try inner.nextForDelivery(mailbox: mailbox, excluding: excluding, limit: limit, now: now)
    }

    func acknowledge(_ requests: [AcknowledgeRequest], now: UInt64) throws(StoreError) -> [Int] {
        try check()
        return try inner.acknowledge(requests, now: now)
    }

    func commit(_ batch: CommitBatch, now: UInt64) -> CommitResult {
        if failing.withLock({ $0 }) {
            let down = StoreError(.unavailable, "the test database is down")
            return CommitResult(accepted: .failure(down), acknowledged: .failure(down), completed: .failure(down), rerouted: .failure(down))
        }
        return inner.commit(batch, now: now)
    }

    func expireCounts(now: UInt64) throws(StoreError) -> ExpiryCounts {
        try check()
        return try inner.expireCounts(now: now)
    }

    func purge(mailbox: Mailbox, now: UInt64) throws(StoreError) -> Int {
        try check()
        return try inner.purge(mailbox: mailbox, now: now)
    }

    func states(of ids: [MessageID], now: UInt64) throws(StoreError) -> [MessageID: RememberedMessage] {
        try check()
        return try inner.states(of: ids, now: now)
    }

    func statistics(now: UInt64) throws(StoreError) -> QueueStatistics {
        try check()
        return try inner.statistics(now: now)
    }

    func occupiedMailboxes() throws(StoreError) -> [Mailbox] {
        try check()
        return try inner.occupiedMailboxes()
    }

    func nextForForwarding(destination: String, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [OutgoingEnvelope] {
        try check()
        return try inner.nextForForwarding(destination: destination, excluding: excluding, limit: limit, now: now)
    }

    func completeForwarding(_ completions: [ForwardCompletion], now: UInt64) throws(StoreError) -> Int {
        try check()
        return try inner.completeForwarding(completions, now: now)
    }

    func reroute(mailbox: Mailbox, to destination: String?, now: UInt64) throws(StoreError) -> Int {
        try check()
        return try inner.reroute(mailbox: mailbox, to: destination, now: now)
    }

    func forwardingBacklog(now: UInt64) throws(StoreError) -> [String: ForwardingBacklog] {
        try check()
        return try inner.forwardingBacklog(now: now)
    }

    func destinations() throws(StoreError) -> [String] {
        try check()
        return try inner.destinations()
    }

    // MARK: PrekeyStore, as SQLite

    func storePrekeys(
        mailbox: Mailbox, prekeys: StoredPrekeys, oneTimePrekeys: [[UInt8]], lastResortKEMPrekey: StoredKEMPrekey, oneTimeKEMPrekeys: [StoredKEMPrekey]
    ) throws(StoreError) -> PrekeyCounts {
        try check()
        return try inner.storePrekeys(
            mailbox: mailbox, prekeys: prekeys, oneTimePrekeys: oneTimePrekeys, lastResortKEMPrekey: lastResortKEMPrekey, oneTimeKEMPrekeys: oneTimeKEMPrekeys)
    }

    func takeBundles(_ mailboxes: [Mailbox], takeOneTimePrekey: ((Int) -> Bool)?) throws(StoreError) -> [PrekeyBundleRecord?] {
        try check()
        return try inner.takeBundles(mailboxes, takeOneTimePrekey: takeOneTimePrekey)
    }

    func oneTimePrekeyCount(mailbox: Mailbox) throws(StoreError) -> Int {
        try check()
        return try inner.oneTimePrekeyCount(mailbox: mailbox)
    }

    func oneTimeKEMPrekeyCount(mailbox: Mailbox) throws(StoreError) -> Int {
        try check()
        return try inner.oneTimeKEMPrekeyCount(mailbox: mailbox)
    }

    func deleteStalePrekeys(_ mailboxes: [Mailbox], current: PrekeyOwnership) throws(StoreError) -> [Mailbox] {
        try check()
        return try inner.deleteStalePrekeys(mailboxes, current: current)
    }
}
