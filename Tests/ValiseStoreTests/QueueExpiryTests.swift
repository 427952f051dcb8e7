import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Queue: expiry and tombstones")
struct QueueExpiryTests {
    @Test("the TTL classes are 1 h, 1 d, 7 d and 30 d")
    func ttlClasses() {
        #expect(TTLClass.allCases.map(\.seconds) == [3600, 86_400, 604_800, 2_592_000])
        #expect(TTLClass.allCases.map(\.name) == ["1h", "1d", "7d", "30d"])
        #expect(Precedence.allCases.sorted(by: >).map(\.name) == ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"])
    }

    @Test("expiry is the store's now plus the TTL class, and an expired envelope is never delivered",
          arguments: StoreKind.allCases, TTLClass.allCases)
    func expiryFromStoreClock(kind: StoreKind, ttl: TTLClass) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let now = queueEpoch + 12_345
        let expiresAt = now + ttl.seconds
        #expect(try store.accept([envelope("alice", 1, .flash, ttl: ttl), envelope("alice", 2, ttl: .month)], now: now)
            == [.accepted(expiresAt: expiresAt, duplicate: false), fresh(now, .month)])
        let stored = try #require(try store.queued("alice", now: now).first)
        #expect(stored.id == messageID(1))
        #expect(stored.arrivedAt == now)
        #expect(stored.expiresAt == expiresAt)

        #expect(try store.queuedIDs("alice", now: expiresAt - 1).first == messageID(1))
        // From its expiry on it is not delivered, even before expire() has removed it.
        for moment in [expiresAt, expiresAt + 1] {
            let ids = try store.queuedIDs("alice", now: moment)
            #expect(!ids.contains(messageID(1)))
            let window = try store.nextForDelivery(mailbox: Mailbox("alice"), excluding: [], limit: 1, now: moment)
            #expect(window.allSatisfy { $0.expiresAt > moment })
        }
    }

    @Test("expire() removes and counts expired envelopes and leaves tombstones with the time", arguments: StoreKind.allCases)
    func expireLeavesTombstones(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([
            envelope("bob", 1, ttl: .hour), envelope("bob", 2, ttl: .day), envelope("carol", 3, ttl: .hour),
            envelope("carol", 4, .flash, ttl: .hour), envelope("carol", 5, ttl: .week),
        ], now: queueEpoch)
        // Delivered before its expiry: stays "delivered", is not counted as expired.
        _ = try store.acknowledge(mailbox: Mailbox("carol"), ids: [messageID(4)], now: queueEpoch + 10)

        #expect(try store.expire(now: queueEpoch + TTLClass.hour.seconds - 1) == 0)
        let sweep = queueEpoch + TTLClass.hour.seconds + 5
        #expect(try store.expire(now: sweep) == 2)
        #expect(try store.expire(now: sweep) == 0)

        #expect(try store.queuedIDs("bob", now: sweep) == [messageID(2)])
        #expect(try store.queuedIDs("carol", now: sweep) == [messageID(5)])
        let states = try store.states(of: (1...5).map { messageID($0) })
        #expect(states[messageID(1)]?.state == .expiredUndelivered)
        // The tombstone's time is the expiry, not the sweep that noticed it.
        #expect(states[messageID(1)]?.since == queueEpoch + TTLClass.hour.seconds)
        #expect(states[messageID(3)]?.state == .expiredUndelivered)
        #expect(states[messageID(3)]?.since == queueEpoch + TTLClass.hour.seconds)
        #expect(states[messageID(4)]?.state == .delivered)
        #expect(states[messageID(4)]?.since == queueEpoch + 10)
        #expect(states[messageID(2)]?.state == .pending)
        #expect(states[messageID(5)]?.state == .pending)

        let statistics = try store.statistics(now: sweep)
        #expect(statistics.countByPrecedence == [.routine: 2])
        #expect(statistics.bytes == 2 * 48)
        #expect(statistics.mailboxes == 2)
        #expect(statistics.remembered == [.pending: 2, .delivered: 1, .expiredUndelivered: 2])
        // An expired id is still known: re-sending it makes no new copy.
        #expect(try store.accept([envelope("bob", 1, ttl: .hour)], now: sweep)
            == [.accepted(expiresAt: queueEpoch + TTLClass.hour.seconds, duplicate: true)])
        #expect(try store.queuedIDs("bob", now: sweep) == [messageID(2)])
    }

    @Test("tombstones are forgotten after the retention period", arguments: StoreKind.allCases)
    func tombstonesForgotten(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let retention: UInt64 = 3 * 3600
        let store = try queue.open(limits: limits(retention: retention))
        _ = try store.accept([envelope("dave", 1, ttl: .hour), envelope("dave", 2, ttl: .month)], now: queueEpoch)
        let expiresAt = queueEpoch + TTLClass.hour.seconds
        #expect(try store.expire(now: expiresAt) == 1)
        #expect(try store.state(of: messageID(1))?.state == .expiredUndelivered)
        #expect(try store.state(of: messageID(1))?.since == expiresAt)

        #expect(try store.expire(now: expiresAt + retention - 1) == 0)
        #expect(try store.state(of: messageID(1))?.state == .expiredUndelivered)
        #expect(try store.expire(now: expiresAt + retention) == 0)
        #expect(try store.state(of: messageID(1)) == nil)
        // The pending one is untouched; forgetting only ever applies to ids no longer queued.
        #expect(try store.state(of: messageID(2))?.state == .pending)
        #expect(try store.statistics(now: expiresAt + retention).remembered == [.pending: 1])
        let now = expiresAt + retention
        #expect(try store.accept([envelope("dave", 1, ttl: .hour)], now: now) == [fresh(now, .hour)])
        #expect(try store.queuedIDs("dave", now: now) == [messageID(2), messageID(1)])
    }

    @Test("an id is remembered at least while its envelope is queued, however long the retention", arguments: StoreKind.allCases)
    func pendingNeverForgotten(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(limits: limits(retention: 0))
        _ = try store.accept([envelope("erin", 1, ttl: .week)], now: queueEpoch)
        #expect(try store.expire(now: queueEpoch + TTLClass.day.seconds) == 0)
        #expect(try store.state(of: messageID(1))?.state == .pending)
        #expect(try store.accept([envelope("erin", 1, ttl: .week)], now: queueEpoch + TTLClass.day.seconds)
            == [.accepted(expiresAt: queueEpoch + TTLClass.week.seconds, duplicate: true)])
        #expect(try store.queued("erin", now: queueEpoch + TTLClass.day.seconds).count == 1)
    }

    @Test("past its expiry but before the sweep, an envelope's status is already expired undelivered, dated at the expiry", arguments: StoreKind.allCases)
    func expiredBeforeSweep(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([envelope("frank", 1, ttl: .hour)], now: queueEpoch)
        let expiresAt = queueEpoch + TTLClass.hour.seconds
        #expect(try store.states(of: [messageID(1)], now: expiresAt - 1)[messageID(1)]?.state == .pending)
        let late = try store.states(of: [messageID(1)], now: expiresAt + 3600)[messageID(1)]
        #expect(late?.state == .expiredUndelivered)
        #expect(late?.since == expiresAt)
    }

    @Test("an ack that arrives after the sweep removed the envelope turns the tombstone into delivered; another mailbox's ack does not", arguments: StoreKind.allCases)
    func ackAfterSweep(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([envelope("gina", 1, ttl: .hour), envelope("gina", 2, ttl: .hour)], now: queueEpoch)
        let sweep = queueEpoch + TTLClass.hour.seconds
        #expect(try store.expire(now: sweep) == 2)
        #expect(try store.acknowledge(mailbox: Mailbox("gina"), ids: [messageID(1)], now: sweep + 1) == 0)
        #expect(try store.acknowledge(mailbox: Mailbox("hank"), ids: [messageID(2)], now: sweep + 1) == 0)
        #expect(try store.state(of: messageID(1))?.state == .delivered)
        #expect(try store.state(of: messageID(1))?.since == sweep + 1)
        #expect(try store.state(of: messageID(2))?.state == .expiredUndelivered)
    }

    @Test("a sweep larger than one deletion chunk removes everything, keeps the counters right, and a purge likewise", arguments: StoreKind.allCases)
    func chunkedSweepAndPurge(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let count = SQLiteEnvelopeStore.deletionChunk * 2 + 7
        let store = try queue.open()
        _ = try store.accept((0..<count).map { envelope("ivan", $0, ttl: .hour) }, now: queueEpoch)
        _ = try store.accept((0..<count).map { envelope("jane", $0, ttl: .week, salt: 9) }, now: queueEpoch)
        #expect(try store.expire(now: queueEpoch + TTLClass.hour.seconds) == count)
        #expect(try store.queuedIDs("ivan", now: queueEpoch).isEmpty)
        #expect(try store.purge(mailbox: Mailbox("jane"), now: queueEpoch + 1) == count)
        let statistics = try store.statistics(now: queueEpoch + 2)
        #expect(statistics.count == 0 && statistics.bytes == 0 && statistics.mailboxes == 0)
        #expect(statistics.remembered == [.expiredUndelivered: count, .undeliverable: count])
        // Usage starts from zero again: a full quota's worth fits.
        #expect(try store.accept([envelope("jane", 1, salt: 10)], now: queueEpoch + 3) == [fresh(queueEpoch + 3)])
        #expect(try queue.integrityCheck(store) == "ok")
    }
}
