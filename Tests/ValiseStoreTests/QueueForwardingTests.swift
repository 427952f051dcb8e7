import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

/// An envelope for a recipient homed at another relay: it waits in the forwarding queue to
/// `destination`.
func outbound(
    _ mailbox: String, _ n: Int, to destination: String = "geneva", _ precedence: Precedence = .routine, ttl: TTLClass = .day,
    lifetime: CarriedLifetime? = nil, hops: UInt8 = 1, body: [UInt8]? = nil
) -> IncomingEnvelope {
    IncomingEnvelope(
        mailbox: Mailbox(mailbox), id: messageID(n), precedence: precedence, ttl: ttl, destination: destination, lifetime: lifetime,
        hops: hops, body: body ?? bodyBytes(n))
}

extension EnvelopeStore {
    /// Everything waiting for `destination` at `now`, in forwarding order.
    func waiting(for destination: String, now: UInt64 = queueEpoch) throws -> [OutgoingEnvelope] {
        try nextForForwarding(destination: destination, excluding: [], limit: 1_000_000, now: now)
    }
}

@Suite("Queue: forwarding queues")
struct QueueForwardingTests {
    @Test("an envelope with a destination waits in that relay's forwarding queue, not in the mailbox, with everything the link sends", arguments: StoreKind.allCases)
    func acceptToDestination(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let incoming = outbound("bob", 1, .immediate, ttl: .week, hops: 2)
        #expect(try store.accept([incoming, envelope("alice", 2)], now: queueEpoch) == [fresh(queueEpoch, .week), fresh(queueEpoch)])
        #expect(try store.queued("bob").isEmpty)
        let waiting = try store.waiting(for: "geneva")
        #expect(waiting.count == 1)
        let first = try #require(waiting.first)
        #expect(first.destination == "geneva" && first.mailbox == Mailbox("bob") && first.id == messageID(1))
        #expect(first.precedence == .immediate && first.requestedTTL == 3 && first.hops == 2 && first.body == bodyBytes(1))
        #expect(first.arrivedAt == queueEpoch && first.expiresAt == queueEpoch + TTLClass.week.seconds)
        #expect(try store.waiting(for: "hq").isEmpty)
        #expect(try store.state(of: messageID(1)) == RememberedMessage(state: .pending, since: queueEpoch))
        #expect(try store.destinations() == ["geneva"])
        #expect(try store.occupiedMailboxes() == [Mailbox("alice"), Mailbox("bob")])
        // The local figures leave the forwarding queue out.
        let statistics = try store.statistics(now: queueEpoch)
        #expect(statistics.count == 1 && statistics.mailboxes == 1 && statistics.bytes == 48)
    }

    @Test("ids are one space across both queues: a re-send is a duplicate with the first expiry, another recipient's is in use", arguments: StoreKind.allCases)
    func dedupAcrossQueues(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([outbound("bob", 1), envelope("alice", 2)], now: queueEpoch)
        let later = queueEpoch + 100
        let first = AcceptOutcome.accepted(expiresAt: queueEpoch + TTLClass.day.seconds, duplicate: true)
        #expect(try store.accept([outbound("bob", 1, ttl: .month)], now: later) == [first])
        #expect(try store.accept([envelope("bob", 1)], now: later) == [first], "the same recipient's id, now meant for the mailbox")
        #expect(try store.accept([outbound("alice", 2)], now: later) == [first])
        #expect(try store.accept([outbound("carol", 2)], now: later) == [.refused(.idInUse)])
        #expect(try store.accept([envelope("carol", 1)], now: later) == [.refused(.idInUse)])
        #expect(try store.waiting(for: "geneva").map(\.id) == [messageID(1)])
        #expect(try store.queuedIDs("alice") == [messageID(2)])
    }

    @Test("a forwarding queue goes FLASH first, then oldest, leaves out ids in flight and expired ones, and stops at the limit", arguments: StoreKind.allCases)
    func forwardingOrder(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let precedences: [Precedence] = [.routine, .flash, .priority, .flash, .immediate, .routine]
        for (n, precedence) in precedences.enumerated() {
            _ = try store.accept([outbound("bob", n + 1, precedence, ttl: n == 5 ? .hour : .day)], now: queueEpoch + UInt64(n))
        }
        _ = try store.accept([outbound("carol", 20, to: "hq", .flash)], now: queueEpoch)
        #expect(try store.waiting(for: "geneva").map(\.id) == [2, 4, 5, 3, 1, 6].map { messageID($0) })
        let inFlight: Set = [messageID(2), messageID(3)]
        #expect(try store.nextForForwarding(destination: "geneva", excluding: inFlight, limit: 3, now: queueEpoch).map(\.id)
            == [4, 5, 1].map { messageID($0) })
        #expect(try store.nextForForwarding(destination: "geneva", excluding: [], limit: 0, now: queueEpoch).isEmpty)
        // Envelope 6 lives an hour: from its expiry on it is never pushed, swept or not.
        let afterHour = queueEpoch + 5 + TTLClass.hour.seconds
        #expect(try !store.waiting(for: "geneva", now: afterHour).map(\.id).contains(messageID(6)))
        #expect(try store.waiting(for: "hq").map(\.id) == [messageID(20)])
    }

    @Test("a transferred envelope is deleted and its id is forwarded, naming the relay; a repeated answer changes nothing", arguments: StoreKind.allCases)
    func transferred(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([outbound("bob", 1), outbound("bob", 2), outbound("bob", 3)], now: queueEpoch)
        let answers = [ForwardCompletion(id: messageID(1), destination: "geneva", outcome: .transferred),
                       ForwardCompletion(id: messageID(2), destination: "geneva", outcome: .undeliverable(.unknownRecipient))]
        #expect(try store.completeForwarding(answers, now: queueEpoch + 50) == 2)
        #expect(try store.waiting(for: "geneva").map(\.id) == [messageID(3)])
        #expect(try store.state(of: messageID(1)) == RememberedMessage(state: .forwarded, since: queueEpoch + 50, forwardedTo: "geneva"))
        #expect(try store.state(of: messageID(2))
            == RememberedMessage(state: .undeliverable, since: queueEpoch + 50, reason: .unknownRecipient))

        // Repeated, and for ids never queued: nothing deleted, nothing re-dated.
        #expect(try store.completeForwarding(answers + [ForwardCompletion(id: messageID(9), destination: "geneva", outcome: .transferred)],
                                             now: queueEpoch + 90) == 0)
        #expect(try store.state(of: messageID(1))?.since == queueEpoch + 50)
        #expect(try store.state(of: messageID(2))?.state == .undeliverable)
        #expect(try store.state(of: messageID(9)) == nil)
        #expect(try store.completeForwarding([], now: queueEpoch + 90) == 0)
        // A re-send of a forwarded id is still a duplicate: this relay made the transfer.
        #expect(try store.accept([outbound("bob", 1)], now: queueEpoch + 100)
            == [.accepted(expiresAt: queueEpoch + TTLClass.day.seconds, duplicate: true)])
        #expect(try store.forwardingBacklog(now: queueEpoch + 100)["geneva"]?.count == 1)
        #expect(try store.statistics(now: queueEpoch + 100).remembered == [.pending: 1, .forwarded: 1, .undeliverable: 1])

        #expect(try store.completeForwarding([ForwardCompletion(id: messageID(3), destination: "geneva", outcome: .transferred)],
                                             now: queueEpoch + 120) == 1)
        #expect(try store.destinations().isEmpty)
        #expect(try store.occupiedMailboxes().isEmpty)
        #expect(try store.forwardingBacklog(now: queueEpoch + 120).isEmpty)
    }

    @Test("a destination's queue is bounded in messages and bytes; a recipient's envelopes in both queues count against its mailbox", arguments: StoreKind.allCases)
    func quotas(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        var bounds = limits(messages: 3, bytes: 1000)
        bounds.maximumMessagesPerDestination = 4
        bounds.maximumBytesPerDestination = 2000
        let store = try queue.open(limits: bounds)
        // Per recipient: two waiting to be forwarded and one local make the mailbox full.
        #expect(try store.accept([outbound("bob", 1), outbound("bob", 2), envelope("bob", 3)], now: queueEpoch)
            == [fresh(queueEpoch), fresh(queueEpoch), fresh(queueEpoch)])
        #expect(try store.accept([outbound("bob", 4)], now: queueEpoch) == [.refused(.mailboxFull)])
        #expect(try store.accept([envelope("bob", 5)], now: queueEpoch) == [.refused(.mailboxFull)])
        // Per destination: two more recipients fill geneva's four places; hq's is another queue.
        #expect(try store.accept([outbound("carol", 6), outbound("dave", 7), outbound("erin", 8), outbound("erin", 9, to: "hq")], now: queueEpoch)
            == [fresh(queueEpoch), fresh(queueEpoch), .refused(.destinationFull), fresh(queueEpoch)])
        #expect(try store.state(of: messageID(8)) == nil, "a refused envelope leaves no id")
        // Bytes: 2000 per destination.
        _ = try store.completeForwarding([6, 7].map { ForwardCompletion(id: messageID($0), destination: "geneva", outcome: .transferred) },
                                         now: queueEpoch + 1)
        #expect(try store.accept([outbound("carol", 10, body: bodyBytes(10, count: 1000)), outbound("dave", 11, body: bodyBytes(11, count: 1000))],
                                 now: queueEpoch + 2) == [fresh(queueEpoch + 2), .refused(.destinationFull)])
        #expect(try store.forwardingBacklog(now: queueEpoch + 2)["geneva"] == ForwardingBacklog(count: 3, bytes: 1096, oldestAge: 2))
        // Completions give the room back, in the destination's bounds and the mailbox's.
        _ = try store.completeForwarding([1, 2].map { ForwardCompletion(id: messageID($0), destination: "geneva", outcome: .transferred) },
                                         now: queueEpoch + 3)
        #expect(try store.accept([outbound("dave", 11, body: bodyBytes(11, count: 1000)), envelope("bob", 5)], now: queueEpoch + 3)
            == [fresh(queueEpoch + 3), fresh(queueEpoch + 3)])
    }

    @Test("a carried lifetime: arrival is now less the age, expiry now plus the remaining time, lowered to the class's maximum", arguments: StoreKind.allCases)
    func carriedLifetime(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let now = queueEpoch + 1000
        let arriving = [
            IncomingEnvelope(mailbox: Mailbox("bob"), id: messageID(1), precedence: .routine, ttl: .day,
                             lifetime: CarriedLifetime(age: 300, remaining: 600), hops: 2, body: bodyBytes(1)),
            IncomingEnvelope(mailbox: Mailbox("bob"), id: messageID(2), precedence: .routine, ttl: .hour, requestedTTL: 4,
                             lifetime: CarriedLifetime(age: 60, remaining: TTLClass.month.seconds), hops: 2, body: bodyBytes(2)),
            outbound("carol", 3, lifetime: CarriedLifetime(age: UInt64.max, remaining: 50), hops: 2),
        ]
        #expect(try store.accept(arriving, now: now)
            == [.accepted(expiresAt: now + 600, duplicate: false), .accepted(expiresAt: now + 3600, duplicate: false),
                .accepted(expiresAt: now + 50, duplicate: false)])
        let bob = try store.queued("bob", now: now)
        #expect(bob.map(\.arrivedAt) == [now - 300, now - 60])
        #expect(bob.map(\.expiresAt) == [now + 600, now + 3600])
        #expect(bob.map(\.requestedTTL) == [2, 4])
        let carol = try #require(try store.waiting(for: "geneva", now: now).first)
        #expect(carol.arrivedAt == 0 && carol.expiresAt == now + 50 && carol.hops == 2, "an age beyond the clock arrives at 0")
        // What a connection already delivering the mailbox is handed: the same times.
        #expect(StoredEnvelope(accepted: arriving[0], expiresAt: now + 600).arrivedAt == now - 300)
        #expect(StoredEnvelope(accepted: arriving[1], expiresAt: now + 3600).arrivedAt == now - 60)
        // A second copy, carried later with more time left, keeps the first expiry.
        let again = IncomingEnvelope(mailbox: Mailbox("bob"), id: messageID(1), precedence: .routine, ttl: .day,
                                     lifetime: CarriedLifetime(age: 10, remaining: 80_000), hops: 3, body: bodyBytes(1))
        #expect(try store.accept([again], now: now + 500) == [.accepted(expiresAt: now + 600, duplicate: true)])
        #expect(try store.queued("bob", now: now + 500).first?.expiresAt == now + 600)
    }

    @Test("an envelope that expires in a forwarding queue is swept and counted apart, and its id reads expired undelivered", arguments: StoreKind.allCases)
    func expiry(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([outbound("bob", 1, ttl: .hour), outbound("bob", 2), outbound("carol", 3, to: "hq", ttl: .hour),
                              envelope("dave", 4, ttl: .hour)], now: queueEpoch)
        let expiry = queueEpoch + TTLClass.hour.seconds
        #expect(try store.state(of: messageID(1)) == RememberedMessage(state: .pending, since: queueEpoch))
        #expect(try store.states(of: [messageID(1)], now: expiry)[messageID(1)] == RememberedMessage(state: .expiredUndelivered, since: expiry))
        #expect(try store.expireCounts(now: expiry - 1) == ExpiryCounts())
        #expect(try store.expireCounts(now: expiry + 10) == ExpiryCounts(local: 1, forwarding: ["geneva": 1, "hq": 1]))
        #expect(try store.state(of: messageID(1)) == RememberedMessage(state: .expiredUndelivered, since: expiry))
        #expect(try store.waiting(for: "geneva", now: expiry + 10).map(\.id) == [messageID(2)])
        #expect(try store.destinations() == ["geneva"])
        #expect(try store.occupiedMailboxes() == [Mailbox("bob")])
        #expect(try store.expire(now: queueEpoch + TTLClass.day.seconds) == 1)
        #expect(try store.destinations().isEmpty)
    }

    @Test("purging a revoked recipient removes their envelopes from both queues, each undeliverable (recipient revoked)", arguments: StoreKind.allCases)
    func purge(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([outbound("bob", 1), outbound("bob", 2, to: "hq"), envelope("bob", 3), outbound("carol", 4)], now: queueEpoch)
        #expect(try store.purge(mailbox: Mailbox("bob"), now: queueEpoch + 7) == 3)
        for n in 1...3 {
            #expect(try store.state(of: messageID(n)) == RememberedMessage(state: .undeliverable, since: queueEpoch + 7, reason: .recipientRevoked))
        }
        #expect(try store.waiting(for: "geneva").map(\.id) == [messageID(4)])
        #expect(try store.destinations() == ["geneva"])
        #expect(try store.occupiedMailboxes() == [Mailbox("carol")])
        #expect(try store.forwardingBacklog(now: queueEpoch + 7) == ["geneva": ForwardingBacklog(count: 1, bytes: 48, oldestAge: 7)])
    }

    @Test("the backlog gives each destination's count, bytes and oldest age", arguments: StoreKind.allCases)
    func backlog(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([outbound("bob", 1, body: [1, 2, 3])], now: queueEpoch)
        _ = try store.accept([outbound("bob", 2, body: [4]), outbound("carol", 3, to: "hq", body: [])], now: queueEpoch + 30)
        #expect(try store.forwardingBacklog(now: queueEpoch + 100) == [
            "geneva": ForwardingBacklog(count: 2, bytes: 4, oldestAge: 100), "hq": ForwardingBacklog(count: 1, bytes: 0, oldestAge: 70),
        ])
        #expect(try store.forwardingBacklog(now: queueEpoch)["hq"]?.oldestAge == 0, "a clock behind the arrival gives age 0")
        #expect(try store.destinations() == ["geneva", "hq"])
    }
}
