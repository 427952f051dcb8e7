import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Queue: accept, deliver, acknowledge")
struct QueueDeliveryTests {
    @Test("delivery is by precedence (FLASH, IMMEDIATE, PRIORITY, ROUTINE), then by arrival", arguments: StoreKind.allCases)
    func precedenceThenArrival(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let plan: [(Int, Precedence)] = [
            (1, .routine), (2, .flash), (3, .priority), (4, .immediate),
            (5, .routine), (6, .flash), (7, .immediate), (8, .priority),
        ]
        // Half in one batch, the rest one by one and later, so both orders within a batch
        // and across batches count.
        let first = plan.prefix(4).map { envelope("alice", $0.0, $0.1) }
        #expect(try store.accept(first, now: queueEpoch) == Array(repeating: fresh(queueEpoch), count: 4))
        for (offset, (n, precedence)) in plan.dropFirst(4).enumerated() {
            let now = queueEpoch + 1 + UInt64(offset)
            #expect(try store.accept([envelope("alice", n, precedence)], now: now) == [fresh(now)])
        }
        // Another mailbox's FLASH must not appear in alice's queue.
        _ = try store.accept([envelope("bob", 99, .flash)], now: queueEpoch)

        let queued = try store.queued("alice", now: queueEpoch + 10)
        #expect(queued.map(\.id) == [2, 6, 4, 7, 3, 8, 1, 5].map { messageID($0) })
        #expect(queued.map(\.precedence) == [.flash, .flash, .immediate, .immediate, .priority, .priority, .routine, .routine])
        #expect(queued.allSatisfy { $0.mailbox == Mailbox("alice") })
        // The rows carry what was accepted: body, arrival and expiry on the store's clock.
        let second = try #require(queued.first { $0.id == messageID(6) })
        #expect(second.body == bodyBytes(6))
        #expect(second.arrivedAt == queueEpoch + 2)
        #expect(second.expiresAt == queueEpoch + 2 + TTLClass.day.seconds)
        #expect(zip(queued, queued.dropFirst()).allSatisfy { $0.precedence > $1.precedence || $0.sequence < $1.sequence })
        #expect(try store.queuedIDs("bob") == [messageID(99)])
    }

    @Test("random arrivals come out as a stable sort by precedence", arguments: StoreKind.allCases, [UInt64(7), 1234, 99_991])
    func randomOrder(kind: StoreKind, seed: UInt64) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        var generator = SplitMix64(seed: seed)
        var arrivals: [(MessageID, Precedence)] = []
        var n = 0
        for round in 0..<8 {
            let batch = (0..<generator.int(in: 1...6)).map { _ -> IncomingEnvelope in
                n += 1
                let precedence = Precedence(rawValue: generator.int(in: 0...3))!
                arrivals.append((messageID(n), precedence))
                return envelope("carol", n, precedence)
            }
            _ = try store.accept(batch, now: queueEpoch + UInt64(round))
        }
        let expected = Precedence.allCases.reversed().flatMap { precedence in
            arrivals.filter { $0.1 == precedence }.map(\.0)
        }
        #expect(try store.queuedIDs("carol", now: queueEpoch + 8) == expected)
    }

    @Test("limit and excluding select the next envelopes after those in flight", arguments: StoreKind.allCases)
    func limitAndExcluding(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let ids = (1...10).map { messageID($0) }
        _ = try store.accept((1...10).map { envelope("dave", $0) }, now: queueEpoch)
        _ = try store.accept([envelope("erin", 50)], now: queueEpoch)
        let dave = Mailbox("dave")
        func next(_ excluding: Set<MessageID>, _ limit: Int) throws -> [MessageID] {
            try store.nextForDelivery(mailbox: dave, excluding: excluding, limit: limit, now: queueEpoch).map(\.id)
        }

        #expect(try next([], 3) == Array(ids[0..<3]))
        #expect(try next([], 0) == [])
        #expect(try next([], 100) == ids)
        // Those in flight are skipped and the window still fills.
        #expect(try next([ids[0], ids[1]], 3) == Array(ids[2..<5]))
        #expect(try next([ids[1], ids[3], ids[5]], 4) == [ids[0], ids[2], ids[4], ids[6]])
        #expect(try next(Set(ids[0..<8]), 5) == [ids[8], ids[9]])
        #expect(try next(Set(ids), 5) == [])
        // Exclusions that are not in this queue (unknown, or another mailbox's) take no room.
        #expect(try next([messageID(77), messageID(78), messageID(50)], 3) == Array(ids[0..<3]))
    }

    @Test("an acknowledgement deletes only the named envelopes of that mailbox", arguments: StoreKind.allCases)
    func acknowledgeDeletesNamed(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept((1...5).map { envelope("frank", $0) }, now: queueEpoch)
        _ = try store.accept((11...13).map { envelope("grace", $0) }, now: queueEpoch)
        let ackTime = queueEpoch + 60

        #expect(try store.acknowledge(mailbox: Mailbox("frank"), ids: [messageID(2), messageID(4)], now: ackTime) == 2)
        #expect(try store.queuedIDs("frank") == [1, 3, 5].map { messageID($0) })
        #expect(try store.queuedIDs("grace") == [11, 12, 13].map { messageID($0) })
        for n in [2, 4] {
            let remembered = try #require(try store.state(of: messageID(n)))
            #expect(remembered.state == .delivered)
            #expect(remembered.since == ackTime)
        }
        #expect(try store.state(of: messageID(1))?.state == .pending)

        let statistics = try store.statistics(now: ackTime)
        #expect(statistics.count == 6)
        #expect(statistics.bytes == 6 * 48)
        #expect(statistics.remembered == [.pending: 6, .delivered: 2])

        // A repeated id within one acknowledgement counts once.
        #expect(try store.acknowledge(mailbox: Mailbox("frank"), ids: [messageID(1), messageID(1)], now: ackTime) == 1)
        #expect(try store.queuedIDs("frank") == [3, 5].map { messageID($0) })
    }

    @Test("acknowledging an unknown id, a repeated one or another mailbox's id changes nothing", arguments: StoreKind.allCases)
    func acknowledgeNoOps(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept((1...3).map { envelope("heidi", $0) }, now: queueEpoch)
        _ = try store.accept([envelope("ivan", 21)], now: queueEpoch)
        #expect(try store.acknowledge(mailbox: Mailbox("heidi"), ids: [messageID(1)], now: queueEpoch + 1) == 1)

        let heidi = try store.queued("heidi")
        let ivan = try store.queued("ivan")
        let statistics = try store.statistics(now: queueEpoch + 5)
        let states = try store.states(of: [1, 2, 3, 21].map { messageID($0) })

        let later = queueEpoch + 5
        #expect(try store.acknowledge(mailbox: Mailbox("heidi"), ids: [messageID(404)], now: later) == 0)
        #expect(try store.acknowledge(mailbox: Mailbox("heidi"), ids: [messageID(1)], now: later) == 0)
        #expect(try store.acknowledge(mailbox: Mailbox("heidi"), ids: [messageID(21)], now: later) == 0)
        #expect(try store.acknowledge(mailbox: Mailbox("nobody"), ids: [messageID(2)], now: later) == 0)
        #expect(try store.acknowledge(mailbox: Mailbox("heidi"), ids: [], now: later) == 0)

        #expect(try store.queued("heidi") == heidi)
        #expect(try store.queued("ivan") == ivan)
        #expect(try store.statistics(now: later) == statistics)
        let after = try store.states(of: [1, 2, 3, 21].map { messageID($0) })
        #expect(after.mapValues(\.state) == states.mapValues(\.state))
        #expect(after.mapValues(\.since) == states.mapValues(\.since))
        // The repeated ack did not move the delivery time, and the foreign id stays pending.
        #expect(after[messageID(1)]?.since == queueEpoch + 1)
        #expect(after[messageID(21)]?.state == .pending)
        #expect(try store.states(of: [messageID(404)]).isEmpty)
    }
}
