import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Queue: mailbox quotas")
struct QueueQuotaTests {
    @Test("a mailbox at its message count refuses, never evicts, and an acknowledgement frees room", arguments: StoreKind.allCases)
    func messageCount(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(limits: limits(messages: 3))
        #expect(try store.accept((1...3).map { envelope("alice", $0) }, now: queueEpoch) == Array(repeating: fresh(queueEpoch), count: 3))
        // Not even a FLASH message pushes out a ROUTINE one.
        #expect(try store.accept([envelope("alice", 4, .flash)], now: queueEpoch + 1) == [.refused(.mailboxFull)])
        #expect(try store.queuedIDs("alice") == [1, 2, 3].map { messageID($0) })
        #expect(try store.state(of: messageID(4)) == nil)
        // Other mailboxes have their own quota.
        #expect(try store.accept([envelope("bob", 10)], now: queueEpoch + 1) == [fresh(queueEpoch + 1)])

        #expect(try store.acknowledge(mailbox: Mailbox("alice"), ids: [messageID(2)], now: queueEpoch + 2) == 1)
        #expect(try store.accept([envelope("alice", 4, .flash)], now: queueEpoch + 3) == [fresh(queueEpoch + 3)])
        #expect(try store.accept([envelope("alice", 5)], now: queueEpoch + 3) == [.refused(.mailboxFull)])
        #expect(try store.queuedIDs("alice") == [4, 1, 3].map { messageID($0) })
    }

    @Test("a mailbox at its byte quota refuses, never evicts, and an acknowledgement frees room", arguments: StoreKind.allCases)
    func byteCount(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(limits: limits(bytes: 1000))
        #expect(try store.accept([envelope("carol", 1, body: bodyBytes(1, count: 600))], now: queueEpoch) == [fresh(queueEpoch)])
        // Exactly at the quota is allowed; one byte over is not.
        #expect(try store.accept([envelope("carol", 2, body: bodyBytes(2, count: 400))], now: queueEpoch) == [fresh(queueEpoch)])
        #expect(try store.accept([envelope("carol", 3, body: [7])], now: queueEpoch) == [.refused(.mailboxFull)])
        #expect(try store.queuedIDs("carol") == [messageID(1), messageID(2)])
        #expect(try store.statistics(now: queueEpoch).bytes == 1000)

        #expect(try store.acknowledge(mailbox: Mailbox("carol"), ids: [messageID(1)], now: queueEpoch + 1) == 1)
        #expect(try store.accept([envelope("carol", 3, body: bodyBytes(3, count: 600))], now: queueEpoch + 2) == [fresh(queueEpoch + 2)])
        #expect(try store.accept([envelope("carol", 4, body: [1])], now: queueEpoch + 2) == [.refused(.mailboxFull)])
        // An envelope larger than the whole quota never fits, even in an empty mailbox.
        #expect(try store.accept([envelope("dave", 5, body: bodyBytes(5, count: 1001))], now: queueEpoch) == [.refused(.mailboxFull)])
        #expect(try store.queued("dave").isEmpty)
    }

    @Test("a refusal inside a batch leaves the batch's other envelopes accepted", arguments: StoreKind.allCases)
    func refusalInBatch(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(limits: limits(messages: 2))
        let outcomes = try store.accept(
            [envelope("erin", 1), envelope("erin", 2), envelope("erin", 3), envelope("frank", 4), envelope("erin", 2)],
            now: queueEpoch)
        #expect(outcomes == [
            fresh(queueEpoch), fresh(queueEpoch), .refused(.mailboxFull), fresh(queueEpoch),
            .accepted(expiresAt: queueEpoch + TTLClass.day.seconds, duplicate: true),
        ])
        #expect(try store.queuedIDs("erin") == [messageID(1), messageID(2)])
        #expect(try store.queuedIDs("frank") == [messageID(4)])
        #expect(try store.state(of: messageID(3)) == nil)
    }

    @Test("expiry and purge free a mailbox's quota too", arguments: StoreKind.allCases)
    func expiryAndPurgeFreeRoom(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(limits: limits(messages: 2, bytes: 100))
        _ = try store.accept([envelope("grace", 1, ttl: .hour, body: bodyBytes(1, count: 50)), envelope("grace", 2, body: bodyBytes(2, count: 50))], now: queueEpoch)
        let later = queueEpoch + TTLClass.hour.seconds
        #expect(try store.accept([envelope("grace", 3, body: [1])], now: later) == [.refused(.mailboxFull)])
        #expect(try store.expire(now: later) == 1)
        #expect(try store.accept([envelope("grace", 3, body: bodyBytes(3, count: 50))], now: later) == [fresh(later)])
        #expect(try store.accept([envelope("grace", 4, body: [1])], now: later) == [.refused(.mailboxFull)])

        #expect(try store.purge(mailbox: Mailbox("grace"), now: later + 1) == 2)
        let refill = (5...6).map { envelope("grace", $0, body: bodyBytes($0, count: 50)) }
        #expect(try store.accept(refill, now: later + 2) == [fresh(later + 2), fresh(later + 2)])
        #expect(try store.queuedIDs("grace", now: later + 2) == [messageID(5), messageID(6)])
    }
}
