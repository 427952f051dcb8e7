import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Queue: purge, statistics and a model")
struct QueueModelTests {
    @Test("purging a revoked mailbox removes and counts its envelopes and touches no other", arguments: StoreKind.allCases)
    func purge(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([
            envelope("alice", 1, .flash), envelope("alice", 2), envelope("alice", 3, .priority),
            envelope("bob", 4), envelope("bob", 5, .immediate),
        ], now: queueEpoch)
        _ = try store.acknowledge(mailbox: Mailbox("alice"), ids: [messageID(3)], now: queueEpoch + 5)
        let bob = try store.queued("bob")

        #expect(try store.purge(mailbox: Mailbox("alice"), now: queueEpoch + 10) == 2)
        #expect(try store.queued("alice").isEmpty)
        #expect(try store.queued("bob") == bob)
        let states = try store.states(of: (1...5).map { messageID($0) })
        #expect(states[messageID(1)]?.state == .undeliverable)
        #expect(states[messageID(1)]?.since == queueEpoch + 10)
        #expect(states[messageID(2)]?.state == .undeliverable)
        #expect(states[messageID(3)]?.state == .delivered)
        #expect(states[messageID(3)]?.since == queueEpoch + 5)
        #expect(states[messageID(4)]?.state == .pending)

        var expected = QueueStatistics()
        expected.countByPrecedence = [.routine: 1, .immediate: 1]
        expected.bytes = 2 * 48
        expected.oldestAge = 20
        expected.mailboxes = 1
        expected.remembered = [.pending: 2, .undeliverable: 2, .delivered: 1]
        #expect(try store.statistics(now: queueEpoch + 20) == expected)

        #expect(try store.purge(mailbox: Mailbox("alice"), now: queueEpoch + 11) == 0)
        #expect(try store.purge(mailbox: Mailbox("nobody"), now: queueEpoch + 11) == 0)
        #expect(try store.state(of: messageID(1))?.since == queueEpoch + 10)
    }

    @Test("statistics of an empty store are zero", arguments: StoreKind.allCases)
    func emptyStatistics(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        #expect(try store.statistics(now: queueEpoch) == QueueStatistics())
    }

    @Test("random accepts, acks, expiries and purges match a model of the queue after every step",
          arguments: StoreKind.allCases, [UInt64(1), 20_250_101, 0xDEAD_BEEF])
    func againstModel(kind: StoreKind, seed: UInt64) throws {
        let queue = QueueUnderTest(kind)
        let queueLimits = limits(messages: 6, bytes: 1500, retention: 2 * 3600)
        let store = try queue.open(limits: queueLimits)
        var model = ForwardingModel(limits: queueLimits)
        var generator = SplitMix64(seed: seed)
        let mailboxes = ["m0", "m1", "m2"]
        var owner: [MessageID: String] = [:]
        var used: [MessageID] = []
        var now = queueEpoch
        var nextNumber = 0
        let ttls: [TTLClass] = [.hour, .hour, .hour, .day, .day, .week, .month]

        for step in 0..<200 {
            now += UInt64(generator.int(in: 0...1500))
            let roll = generator.int(in: 0...99)
            let operation: String
            switch roll {
            case 0..<50:
                var batch: [IncomingEnvelope] = []
                for _ in 0..<generator.int(in: 1...4) {
                    let id: MessageID
                    var mailbox = mailboxes[generator.int(in: 0...2)]
                    if !used.isEmpty && generator.int(in: 0...99) < 20 {
                        // A re-send, mostly to its own mailbox, sometimes to another.
                        id = used[generator.int(in: 0...(used.count - 1))]
                        if generator.int(in: 0...99) < 70, let known = owner[id] { mailbox = known }
                    } else {
                        nextNumber += 1
                        id = messageID(nextNumber, salt: seed)
                        used.append(id)
                    }
                    let body = generator.bytes(generator.int(in: 0...400))
                    batch.append(IncomingEnvelope(
                        mailbox: Mailbox(mailbox), id: id, precedence: Precedence(rawValue: generator.int(in: 0...3))!,
                        ttl: ttls[generator.int(in: 0...(ttls.count - 1))], body: body))
                }
                operation = "accept \(batch.map { "\($0.id)@\($0.mailbox)" })"
                let expected = batch.map { model.accept($0, now: now) }
                for (envelope, outcome) in zip(batch, expected) where outcome == .accepted(expiresAt: now + envelope.ttl.seconds, duplicate: false) {
                    owner[envelope.id] = envelope.mailbox.name
                }
                try #require(try store.accept(batch, now: now) == expected, "seed \(seed) step \(step): \(operation)")
            case 50..<78:
                let mailbox = mailboxes[generator.int(in: 0...2)]
                var ids = Array(model.next(mailbox: mailbox, now: now).map(\.id).shuffled(using: &generator).prefix(generator.int(in: 0...3)))
                // Some acks name ids that are unknown, already acknowledged, or another mailbox's.
                if !used.isEmpty && generator.int(in: 0...99) < 40 { ids.append(used[generator.int(in: 0...(used.count - 1))]) }
                if generator.int(in: 0...99) < 10 { ids.append(messageID(-step, salt: seed)) }
                operation = "acknowledge \(ids) @\(mailbox)"
                let expected = model.acknowledge(mailbox: mailbox, ids: ids, now: now)
                try #require(try store.acknowledge(mailbox: Mailbox(mailbox), ids: ids, now: now) == expected, "seed \(seed) step \(step): \(operation)")
            case 78..<95:
                operation = "expire"
                let expected = model.expire(now: now).total
                try #require(try store.expire(now: now) == expected, "seed \(seed) step \(step): \(operation)")
            default:
                let mailbox = mailboxes[generator.int(in: 0...2)]
                operation = "purge \(mailbox)"
                let expected = model.purge(mailbox: mailbox, now: now)
                try #require(try store.purge(mailbox: Mailbox(mailbox), now: now) == expected, "seed \(seed) step \(step): \(operation)")
            }

            for mailbox in mailboxes {
                let stored = try store.queued(mailbox, now: now)
                let expected = model.next(mailbox: mailbox, now: now).map(\.id)
                try #require(stored.map(\.id) == expected, "seed \(seed) step \(step) after \(operation): order of \(mailbox)")
                for row in stored {
                    let entry = try #require(model.envelopes.first { $0.id == row.id })
                    try #require(row.precedence == entry.precedence && row.arrivedAt == entry.arrivedAt
                        && row.expiresAt == entry.expiresAt && row.body == entry.body && row.mailbox.name == entry.mailbox,
                        "seed \(seed) step \(step): row \(row.id)")
                }
            }
            try #require(try store.statistics(now: now) == model.statistics(now: now), "seed \(seed) step \(step) after \(operation): statistics")
            let states = try store.states(of: used)
            try #require(states.mapValues(\.state) == model.memory.mapValues(\.remembered.state), "seed \(seed) step \(step) after \(operation): states")
            try #require(states.mapValues(\.since) == model.memory.mapValues(\.remembered.since), "seed \(seed) step \(step) after \(operation): times")
        }
        #expect(try queue.integrityCheck(store) == "ok")
    }
}
