import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Queue: duplicate ids")
struct QueueDedupTests {
    @Test("a re-sent id for the same mailbox is accepted as a duplicate and stored once", arguments: StoreKind.allCases)
    func resendSameMailbox(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        #expect(try store.accept([envelope("alice", 1, .routine, ttl: .hour)], now: queueEpoch) == [fresh(queueEpoch, .hour)])
        // The repeat differs in everything but its id and mailbox: the first copy stands,
        // and the answer carries the first copy's expiry.
        let repeated = envelope("alice", 1, .flash, ttl: .month, body: [9, 9, 9])
        #expect(try store.accept([repeated], now: queueEpoch + 30)
            == [.accepted(expiresAt: queueEpoch + TTLClass.hour.seconds, duplicate: true)])

        let queued = try store.queued("alice", now: queueEpoch + 30)
        #expect(queued.count == 1)
        #expect(queued.first?.body == bodyBytes(1))
        #expect(queued.first?.precedence == .routine)
        let statistics = try store.statistics(now: queueEpoch + 30)
        #expect(statistics.count == 1)
        #expect(statistics.bytes == 48)
        #expect(statistics.remembered == [.pending: 1])
    }

    @Test("the same id twice in one batch makes one copy", arguments: StoreKind.allCases)
    func duplicateWithinBatch(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let outcomes = try store.accept([envelope("bob", 1), envelope("bob", 1, .flash), envelope("bob", 2)], now: queueEpoch)
        #expect(outcomes == [
            fresh(queueEpoch),
            .accepted(expiresAt: queueEpoch + TTLClass.day.seconds, duplicate: true),
            fresh(queueEpoch),
        ])
        #expect(try store.queuedIDs("bob") == [messageID(1), messageID(2)])
    }

    @Test("after delivery the id is remembered as a duplicate for the retention period, then forgotten", arguments: StoreKind.allCases)
    func rememberedAfterDelivery(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let retention: UInt64 = 2 * 3600
        let store = try queue.open(limits: limits(retention: retention))
        let original = envelope("carol", 1, ttl: .hour)
        let expiresAt = queueEpoch + TTLClass.hour.seconds
        _ = try store.accept([original], now: queueEpoch)
        let deliveredAt = queueEpoch + 100
        #expect(try store.acknowledge(mailbox: Mailbox("carol"), ids: [original.id], now: deliveredAt) == 1)

        // Up to a retention period after it left the queue, a re-send is a harmless duplicate.
        let stillRemembered = deliveredAt + retention - 1
        #expect(try store.expire(now: stillRemembered) == 0)
        #expect(try store.state(of: original.id)?.state == .delivered)
        #expect(try store.accept([original], now: stillRemembered) == [.accepted(expiresAt: expiresAt, duplicate: true)])
        #expect(try store.queued("carol", now: stillRemembered).isEmpty)

        // Once retention has passed even counted from its latest possible departure (its
        // expiry), the id is forgotten: a re-send is a new message.
        let forgotten = expiresAt + retention
        #expect(try store.expire(now: forgotten) == 0)
        #expect(try store.state(of: original.id) == nil)
        #expect(try store.statistics(now: forgotten).remembered.isEmpty)
        #expect(try store.accept([original], now: forgotten) == [fresh(forgotten, .hour)])
        #expect(try store.queuedIDs("carol", now: forgotten) == [original.id])
    }

    @Test("an id accepted for one mailbox is refused for another, pending or delivered", arguments: StoreKind.allCases)
    func idInUse(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([envelope("dave", 1), envelope("dave", 2)], now: queueEpoch)
        #expect(try store.accept([envelope("erin", 1)], now: queueEpoch + 1) == [.refused(.idInUse)])
        #expect(try store.queued("erin").isEmpty)
        #expect(try store.queuedIDs("dave") == [messageID(1), messageID(2)])

        _ = try store.acknowledge(mailbox: Mailbox("dave"), ids: [messageID(2)], now: queueEpoch + 2)
        #expect(try store.accept([envelope("erin", 2)], now: queueEpoch + 3) == [.refused(.idInUse)])
        #expect(try store.queued("erin").isEmpty)
        #expect(try store.state(of: messageID(2))?.state == .delivered)
        let statistics = try store.statistics(now: queueEpoch + 3)
        #expect(statistics.mailboxes == 1)
        #expect(statistics.count == 1)
    }

    @Test("a re-send into a full mailbox is still a duplicate, not a quota refusal", arguments: StoreKind.allCases)
    func duplicateBeatsQuota(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(limits: limits(messages: 2))
        _ = try store.accept([envelope("frank", 1), envelope("frank", 2)], now: queueEpoch)
        #expect(try store.accept([envelope("frank", 3)], now: queueEpoch) == [.refused(.mailboxFull)])
        #expect(try store.accept([envelope("frank", 2)], now: queueEpoch + 1)
            == [.accepted(expiresAt: queueEpoch + TTLClass.day.seconds, duplicate: true)])
    }
}
