import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Queue: purge, statistics and a model")
struct QueueModelTests {
    let file = QueueFile()

    @Test("purging a revoked mailbox removes and counts its envelopes and touches no other")
    func purge() throws {
        let store = try file.open()
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

    @Test("statistics of an empty store are zero")
    func emptyStatistics() throws {
        let store = try file.open()
        #expect(try store.statistics(now: queueEpoch) == QueueStatistics())
    }

    @Test("random accepts, acks, expiries and purges match a model of the queue after every step",
          arguments: [UInt64(1), 20_250_101, 0xDEAD_BEEF])
    func againstModel(seed: UInt64) throws {
        let queueLimits = limits(messages: 6, bytes: 1500, retention: 2 * 3600)
        let store = try file.open(limits: queueLimits)
        var model = QueueModel(limits: queueLimits)
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
                var ids = Array(model.next(mailbox: mailbox, now: now).shuffled(using: &generator).prefix(generator.int(in: 0...3)))
                // Some acks name ids that are unknown, already acknowledged, or another mailbox's.
                if !used.isEmpty && generator.int(in: 0...99) < 40 { ids.append(used[generator.int(in: 0...(used.count - 1))]) }
                if generator.int(in: 0...99) < 10 { ids.append(messageID(-step, salt: seed)) }
                operation = "acknowledge \(ids) @\(mailbox)"
                let expected = model.acknowledge(mailbox: mailbox, ids: ids, now: now)
                try #require(try store.acknowledge(mailbox: Mailbox(mailbox), ids: ids, now: now) == expected, "seed \(seed) step \(step): \(operation)")
            case 78..<95:
                operation = "expire"
                let expected = model.expire(now: now)
                try #require(try store.expire(now: now) == expected, "seed \(seed) step \(step): \(operation)")
            default:
                let mailbox = mailboxes[generator.int(in: 0...2)]
                operation = "purge \(mailbox)"
                let expected = model.purge(mailbox: mailbox, now: now)
                try #require(try store.purge(mailbox: Mailbox(mailbox), now: now) == expected, "seed \(seed) step \(step): \(operation)")
            }

            for mailbox in mailboxes {
                let stored = try store.queued(mailbox, now: now)
                let expected = model.next(mailbox: mailbox, now: now)
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
            try #require(states.mapValues(\.state) == model.memory.mapValues(\.state), "seed \(seed) step \(step) after \(operation): states")
            try #require(states.mapValues(\.since) == model.memory.mapValues(\.since), "seed \(seed) step \(step) after \(operation): times")
        }
        #expect(try store.integrityCheck() == "ok")
    }
}

/// What the queue should hold, written from the store's contract: one list of envelopes in
/// arrival order, and what is remembered of every id.
struct QueueModel {
    struct Entry {
        let id: MessageID
        let mailbox: String
        let precedence: Precedence
        let arrivedAt: UInt64
        let expiresAt: UInt64
        let body: [UInt8]
    }

    struct Memory {
        let mailbox: String
        var state: MessageState
        var since: UInt64
        let expiresAt: UInt64
        /// The store keeps an id for the retention period after the latest moment its envelope
        /// could leave the queue (its expiry).
        let forgetAt: UInt64
    }

    let limits: QueueLimits
    var envelopes: [Entry] = []
    var memory: [MessageID: Memory] = [:]

    init(limits: QueueLimits) { self.limits = limits }

    mutating func accept(_ envelope: IncomingEnvelope, now: UInt64) -> AcceptOutcome {
        if let known = memory[envelope.id] {
            return known.mailbox == envelope.mailbox.name ? .accepted(expiresAt: known.expiresAt, duplicate: true) : .refused(.idInUse)
        }
        let mine = envelopes.filter { $0.mailbox == envelope.mailbox.name }
        guard mine.count + 1 <= limits.maximumMessagesPerMailbox,
              mine.reduce(0, { $0 + $1.body.count }) + envelope.body.count <= limits.maximumBytesPerMailbox
        else { return .refused(.mailboxFull) }
        let expiresAt = now + envelope.ttl.seconds
        envelopes.append(Entry(id: envelope.id, mailbox: envelope.mailbox.name, precedence: envelope.precedence,
                               arrivedAt: now, expiresAt: expiresAt, body: envelope.body))
        memory[envelope.id] = Memory(mailbox: envelope.mailbox.name, state: .pending, since: now,
                                     expiresAt: expiresAt, forgetAt: expiresAt + limits.retentionSeconds)
        return .accepted(expiresAt: expiresAt, duplicate: false)
    }

    mutating func acknowledge(mailbox: String, ids: [MessageID], now: UInt64) -> Int {
        var deleted = 0
        for id in ids {
            guard let index = envelopes.firstIndex(where: { $0.id == id && $0.mailbox == mailbox }) else {
                // Swept as expired before the ack came: the recipient has it after all.
                if let memo = memory[id], memo.mailbox == mailbox, memo.state == .expiredUndelivered {
                    memory[id]?.state = .delivered
                    memory[id]?.since = now
                }
                continue
            }
            envelopes.remove(at: index)
            memory[id]?.state = .delivered
            memory[id]?.since = now
            deleted += 1
        }
        return deleted
    }

    mutating func expire(now: UInt64) -> Int {
        let expired = envelopes.filter { $0.expiresAt <= now }
        envelopes.removeAll { $0.expiresAt <= now }
        for entry in expired {
            memory[entry.id]?.state = .expiredUndelivered
            memory[entry.id]?.since = entry.expiresAt
        }
        memory = memory.filter { $0.value.forgetAt > now }
        return expired.count
    }

    mutating func purge(mailbox: String, now: UInt64) -> Int {
        let purged = envelopes.filter { $0.mailbox == mailbox }
        envelopes.removeAll { $0.mailbox == mailbox }
        for entry in purged {
            memory[entry.id]?.state = .undeliverable
            memory[entry.id]?.since = now
        }
        return purged.count
    }

    func next(mailbox: String, now: UInt64) -> [MessageID] {
        let live = envelopes.filter { $0.mailbox == mailbox && $0.expiresAt > now }
        return Precedence.allCases.reversed().flatMap { precedence in live.filter { $0.precedence == precedence }.map(\.id) }
    }

    func statistics(now: UInt64) -> QueueStatistics {
        var statistics = QueueStatistics()
        for entry in envelopes {
            statistics.countByPrecedence[entry.precedence, default: 0] += 1
            statistics.bytes += entry.body.count
        }
        if let oldest = envelopes.map(\.arrivedAt).min() { statistics.oldestAge = now > oldest ? now - oldest : 0 }
        statistics.mailboxes = Set(envelopes.map(\.mailbox)).count
        for remembered in memory.values { statistics.remembered[remembered.state, default: 0] += 1 }
        return statistics
    }
}
