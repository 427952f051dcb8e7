import Foundation
import GRDB
import Testing
import ValiseTestSupport
@testable import ValiseStore

/// Helpers shared by the queue suites: deterministic ids and envelopes, a store in a
/// temporary directory, and a store wrapper that can hold the writer thread still.

/// An arbitrary fixed time on the relay's clock (seconds).
let queueEpoch: UInt64 = 1_800_000_000

/// A deterministic, random-looking id: `n` and `salt` select it.
func messageID(_ n: Int, salt: UInt64 = 0) -> MessageID {
    var generator = SplitMix64(seed: UInt64(bitPattern: Int64(n)) &* 0x9E37_79B9 ^ (salt &+ 0x51A7))
    return MessageID(bytes: generator.bytes(MessageID.byteCount))!
}

/// Body bytes that differ per envelope, so that a mixed-up row would show.
func bodyBytes(_ n: Int, count: Int = 48) -> [UInt8] {
    var generator = SplitMix64(seed: UInt64(bitPattern: Int64(n)) ^ 0xB0D1)
    return generator.bytes(count)
}

func envelope(
    _ mailbox: String, _ n: Int, _ precedence: Precedence = .routine,
    ttl: TTLClass = .day, body: [UInt8]? = nil, salt: UInt64 = 0
) -> IncomingEnvelope {
    IncomingEnvelope(
        mailbox: Mailbox(mailbox), id: messageID(n, salt: salt), precedence: precedence, ttl: ttl,
        body: body ?? bodyBytes(n))
}

/// A store file in its own temporary directory (removed when the fixture goes): for the
/// suites about SQLite itself; the contract suites open stores through `QueueUnderTest`.
struct QueueFile {
    let directory = TemporaryDirectory()
    var path: String { directory.file("queue.sqlite") }

    func open(limits: QueueLimits = QueueLimits(), maximumBytes: Int? = nil, durability: Durability = .full) throws -> SQLiteEnvelopeStore {
        try SQLiteEnvelopeStore(path: path, limits: limits, maximumBytes: maximumBytes, durability: durability)
    }

    /// The file as an earlier version left it: every migration up to `migration`, no later one.
    func earlier(upTo migration: String) throws -> DatabasePool {
        let pool = try DatabasePool(path: path)
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA application_id = \(SQLiteEnvelopeStore.fileKind.applicationID)") }
        try SQLiteEnvelopeStore.migrator.migrate(pool, upTo: migration)
        return pool
    }
}

func limits(messages: Int = 10_000, bytes: Int = 256 * 1024 * 1024, retention: UInt64 = 31 * 86_400) -> QueueLimits {
    var limits = QueueLimits()
    limits.maximumMessagesPerMailbox = messages
    limits.maximumBytesPerMailbox = bytes
    limits.retentionSeconds = retention
    return limits
}

extension EnvelopeStore {
    /// Everything deliverable to `mailbox` at `now`, in delivery order.
    func queued(_ mailbox: String, now: UInt64 = queueEpoch) throws -> [StoredEnvelope] {
        try nextForDelivery(mailbox: Mailbox(mailbox), excluding: [], limit: 1_000_000, now: now)
    }

    func queuedIDs(_ mailbox: String, now: UInt64 = queueEpoch) throws -> [MessageID] {
        try queued(mailbox, now: now).map(\.id)
    }

    func state(of id: MessageID) throws -> RememberedMessage? {
        try states(of: [id])[id]
    }
}

/// The outcome of a fresh, non-duplicate accept at `now`.
func fresh(_ now: UInt64, _ ttl: TTLClass = .day) -> AcceptOutcome {
    .accepted(expiresAt: now + ttl.seconds, duplicate: false)
}

/// A value shared between threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withValue<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    var current: Value { withValue { $0 } }
}

/// Counts completions and lets a test wait for a number of them without sleeping.
final class CompletionCounter: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)

    func signal() { semaphore.signal() }

    /// True when `count` completions arrived; the bound only keeps a broken writer from
    /// hanging the run.
    func wait(for count: Int, seconds: Int = 30) -> Bool {
        let deadline = DispatchTime.now() + .seconds(seconds)
        for _ in 0..<count where semaphore.wait(timeout: deadline) == .timedOut { return false }
        return true
    }
}

/// An `EnvelopeStore` that forwards to a real one, records the batches it is given, and
/// when armed holds the next write until released: jobs queued meanwhile must wait for
/// the writer thread, so a test knows exactly which ones form the next batch.
final class GatedStore: EnvelopeStore, @unchecked Sendable {
    let inner: any EnvelopeStore
    private let lock = NSLock()
    private var armed = false
    private var batches: [[MessageID]] = []
    private var commits: [CommitBatch] = []
    private let entered = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)

    init(_ inner: any EnvelopeStore) { self.inner = inner }

    /// The ids of each accept call, in order.
    var acceptBatches: [[MessageID]] {
        lock.lock()
        defer { lock.unlock() }
        return batches
    }

    /// Each `commit` call's batch, in order.
    var commitBatches: [CommitBatch] {
        lock.lock()
        defer { lock.unlock() }
        return commits
    }

    func arm() {
        lock.lock()
        armed = true
        lock.unlock()
    }

    /// Waits until the writer is held inside the store (bounded, so a bug cannot hang the run).
    func waitUntilHeld() -> Bool { entered.wait(timeout: .now() + .seconds(30)) == .success }

    func release() { released.signal() }

    private func gate() {
        lock.lock()
        let hold = armed
        armed = false
        lock.unlock()
        if hold {
            entered.signal()
            released.wait()
        }
    }

    func accept(_ envelopes: [IncomingEnvelope], now: UInt64) throws(StoreError) -> [AcceptOutcome] {
        lock.lock()
        batches.append(envelopes.map(\.id))
        lock.unlock()
        gate()
        return try inner.accept(envelopes, now: now)
    }

    /// The inner store's own commit (one transaction for the batch), recorded and gated.
    func commit(_ batch: CommitBatch, now: UInt64) -> CommitResult {
        lock.lock()
        if !batch.envelopes.isEmpty { batches.append(batch.envelopes.map(\.id)) }
        commits.append(batch)
        lock.unlock()
        gate()
        return inner.commit(batch, now: now)
    }

    func nextForDelivery(mailbox: Mailbox, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [StoredEnvelope] {
        try inner.nextForDelivery(mailbox: mailbox, excluding: excluding, limit: limit, now: now)
    }

    func acknowledge(_ requests: [AcknowledgeRequest], now: UInt64) throws(StoreError) -> [Int] {
        gate()
        return try inner.acknowledge(requests, now: now)
    }

    func expireCounts(now: UInt64) throws(StoreError) -> ExpiryCounts {
        gate()
        return try inner.expireCounts(now: now)
    }

    func purge(mailbox: Mailbox, now: UInt64) throws(StoreError) -> Int {
        gate()
        return try inner.purge(mailbox: mailbox, now: now)
    }

    func states(of ids: [MessageID], now: UInt64) throws(StoreError) -> [MessageID: RememberedMessage] {
        try inner.states(of: ids, now: now)
    }

    func statistics(now: UInt64) throws(StoreError) -> QueueStatistics {
        try inner.statistics(now: now)
    }

    func occupiedMailboxes() throws(StoreError) -> [Mailbox] {
        try inner.occupiedMailboxes()
    }

    func nextForForwarding(destination: String, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [OutgoingEnvelope] {
        try inner.nextForForwarding(destination: destination, excluding: excluding, limit: limit, now: now)
    }

    func completeForwarding(_ completions: [ForwardCompletion], now: UInt64) throws(StoreError) -> Int {
        gate()
        return try inner.completeForwarding(completions, now: now)
    }

    func reroute(mailbox: Mailbox, to destination: String?, now: UInt64) throws(StoreError) -> Int {
        gate()
        return try inner.reroute(mailbox: mailbox, to: destination, now: now)
    }

    func forwardingBacklog(now: UInt64) throws(StoreError) -> [String: ForwardingBacklog] {
        try inner.forwardingBacklog(now: now)
    }

    func destinations() throws(StoreError) -> [String] {
        try inner.destinations()
    }
}
