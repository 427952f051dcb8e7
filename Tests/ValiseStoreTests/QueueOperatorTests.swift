import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

/// The operator's actions (`valised queue`): a held envelope is neither delivered nor
/// forwarded but still expires; a released one is delivered again; a deleted one leaves a
/// tombstone that says the operator deleted it; the backlog is per mailbox.
@Suite("Queue: operator actions")
struct QueueOperatorTests {
    @Test("a held envelope is not delivered until it is released, and keeps its place", arguments: StoreKind.allCases)
    func holdAndRelease(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([envelope("carol", 1, .flash), envelope("carol", 2), envelope("bob", 3)], now: queueEpoch)
        let held = try store.setHeld([messageID(1), messageID(9)], held: true)
        #expect(held.keys.sorted { $0.description < $1.description } == [messageID(1)])
        #expect(held[messageID(1)]?.held == true && held[messageID(1)]?.mailbox == Mailbox("carol"))
        #expect(try store.queuedIDs("carol") == [messageID(2)])
        #expect(try store.queued(mailbox: Mailbox("carol"), limit: 10, now: queueEpoch).map(\.held) == [true, false])

        let released = try store.setHeld([messageID(1)], held: false)
        #expect(released[messageID(1)]?.held == false)
        #expect(try store.queuedIDs("carol") == [messageID(1), messageID(2)])
        #expect(try store.state(of: messageID(1))?.state == .pending)
    }

    @Test("a held envelope expires as usual: its sender sees expired undelivered", arguments: StoreKind.allCases)
    func heldExpires(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([envelope("carol", 1, ttl: .day)], now: queueEpoch)
        _ = try store.setHeld([messageID(1)], held: true)
        let expiry = queueEpoch + TTLClass.day.seconds
        #expect(try store.expire(now: expiry) == 1)
        #expect(try store.state(of: messageID(1)) == RememberedMessage(state: .expiredUndelivered, since: expiry))
        #expect(try store.queued(mailbox: nil, limit: 10, now: expiry).isEmpty)
    }

    @Test("a held envelope in a forwarding queue is not forwarded; released, it is; a reroute keeps it held", arguments: StoreKind.allCases)
    func holdForwarded(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([outbound("bob", 1), outbound("bob", 2)], now: queueEpoch)
        #expect(try store.setHeld([messageID(1)], held: true)[messageID(1)]?.destination == "geneva")
        #expect(try store.waiting(for: "geneva").map(\.id) == [messageID(2)])
        _ = try store.reroute(mailbox: Mailbox("bob"), to: nil, now: queueEpoch)
        #expect(try store.queuedIDs("bob") == [messageID(2)])
        _ = try store.reroute(mailbox: Mailbox("bob"), to: "hq", now: queueEpoch)
        #expect(try store.waiting(for: "hq").map(\.id) == [messageID(2)])
        _ = try store.setHeld([messageID(1)], held: false)
        #expect(try store.waiting(for: "hq").map(\.id) == [messageID(1), messageID(2)])
    }

    @Test("a deleted envelope is gone, its id remembered as undeliverable (deleted by the operator), its room given back", arguments: StoreKind.allCases)
    func deleteByOperator(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(limits: limits(messages: 2))
        _ = try store.accept([envelope("carol", 1), envelope("carol", 2), outbound("bob", 3)], now: queueEpoch)
        let deleted = try store.deleteByOperator([messageID(1), messageID(3), messageID(7)], now: queueEpoch + 5)
        #expect(Set(deleted.keys) == [messageID(1), messageID(3)])
        #expect(try store.queuedIDs("carol") == [messageID(2)])
        #expect(try store.waiting(for: "geneva").isEmpty)
        let states = try store.states(of: [messageID(1), messageID(3)], now: queueEpoch + 10)
        #expect(states[messageID(1)] == RememberedMessage(state: .undeliverable, since: queueEpoch + 5, reason: .deletedByOperator))
        #expect(states[messageID(3)] == RememberedMessage(state: .undeliverable, since: queueEpoch + 5, reason: .deletedByOperator))
        // The mailbox's quota counts what is left: one more fits.
        #expect(try store.accept([envelope("carol", 4)], now: queueEpoch + 6) == [fresh(queueEpoch + 6)])
        #expect(try store.destinations().isEmpty)
        // A second delete of the same id finds nothing and changes nothing.
        #expect(try store.deleteByOperator([messageID(1)], now: queueEpoch + 20).isEmpty)
        #expect(try store.state(of: messageID(1))?.since == queueEpoch + 5)
    }

    @Test("the backlog per mailbox: envelopes, bytes, the oldest's age, how many are held; the list filters by mailbox", arguments: StoreKind.allCases)
    func backlog(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([envelope("carol", 1, body: bodyBytes(1, count: 100))], now: queueEpoch)
        _ = try store.accept([envelope("carol", 2, body: bodyBytes(2, count: 50)), envelope("bob", 3, body: bodyBytes(3, count: 10))], now: queueEpoch + 30)
        _ = try store.setHeld([messageID(2)], held: true)
        let backlog = try store.mailboxBacklog(now: queueEpoch + 100)
        #expect(backlog == [
            MailboxBacklog(mailbox: Mailbox("carol"), count: 2, bytes: 150, oldestAge: 100, held: 1),
            MailboxBacklog(mailbox: Mailbox("bob"), count: 1, bytes: 10, oldestAge: 70, held: 0),
        ])
        #expect(try store.queued(mailbox: Mailbox("bob"), limit: 10, now: queueEpoch).map(\.id) == [messageID(3)])
        #expect(try store.queued(mailbox: nil, limit: 2, now: queueEpoch).map(\.id).first == messageID(1))
        #expect(try store.queued(mailbox: nil, limit: 2, now: queueEpoch).count == 2)
    }
}
