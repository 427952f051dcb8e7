import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Queue: forwarding queues against a model")
struct QueueForwardingModelTests {
    @Test("random accepts (local and forwarded), acks, completions, reroutes, expiries, purges and whole batches match a model after every step",
          arguments: StoreKind.allCases, [UInt64(7), 20_261_207, 0xFEED_F00D])
    func againstModel(kind: StoreKind, seed: UInt64) throws {
        let queue = QueueUnderTest(kind)
        var queueLimits = limits(messages: 6, bytes: 1500, retention: 2 * 3600)
        queueLimits.maximumMessagesPerDestination = 5
        queueLimits.maximumBytesPerDestination = 1200
        let store = try queue.open(limits: queueLimits)
        var model = ForwardingModel(limits: queueLimits)
        var generator = SplitMix64(seed: seed)
        let mailboxes = ["m0", "m1", "m2"]
        let destinations: [String?] = [nil, nil, "geneva", "hq"]
        var used: [MessageID] = []
        var now = queueEpoch
        var nextNumber = 0
        let ttls: [TTLClass] = [.hour, .hour, .day, .week]

        func pick<T>(_ values: [T]) -> T { values[generator.int(in: 0...(values.count - 1))] }
        func chance(_ percent: Int) -> Bool { generator.int(in: 0...99) < percent }

        func randomEnvelopes() -> [IncomingEnvelope] {
            (0..<generator.int(in: 1...3)).map { _ in
                let id: MessageID
                if !used.isEmpty && chance(20) {
                    id = pick(used)
                } else {
                    nextNumber += 1
                    id = messageID(nextNumber, salt: seed)
                    used.append(id)
                }
                let lifetime = chance(25) ? CarriedLifetime(age: UInt64(generator.int(in: 0...5000)), remaining: UInt64(generator.int(in: 0...200_000))) : nil
                return IncomingEnvelope(
                    mailbox: Mailbox(pick(mailboxes)), id: id, precedence: Precedence(rawValue: generator.int(in: 0...3))!, ttl: pick(ttls),
                    destination: pick(destinations), lifetime: lifetime, hops: UInt8(generator.int(in: 1...2)),
                    body: generator.bytes(generator.int(in: 0...400)))
            }
        }

        func randomCompletions() -> [ForwardCompletion] {
            var ids = Array(model.envelopes.filter { $0.destination != nil }.map(\.id).shuffled(using: &generator).prefix(generator.int(in: 0...3)))
            if !used.isEmpty && chance(30) { ids.append(pick(used)) }
            return ids.map { id in
                ForwardCompletion(id: id, destination: pick(["geneva", "hq"]),
                                  outcome: chance(80) ? .transferred : .undeliverable(pick(UndeliverableReason.allCases)))
            }
        }

        for step in 0..<200 {
            now += UInt64(generator.int(in: 0...1500))
            let context = "seed \(seed) step \(step)"
            var operation: String
            switch generator.int(in: 0...99) {
            case 0..<35:
                let batch = randomEnvelopes()
                operation = "accept \(batch.map { "\($0.id)@\($0.mailbox)>\($0.destination ?? "-")" })"
                let expected = batch.map { model.accept($0, now: now) }
                try #require(try store.accept(batch, now: now) == expected, "\(context): \(operation)")
            case 35..<45:
                let mailbox = pick(mailboxes)
                var ids = Array(model.next(mailbox: mailbox, now: now).map(\.id).prefix(generator.int(in: 0...2)))
                if !used.isEmpty && chance(40) { ids.append(pick(used)) }
                operation = "acknowledge \(ids) @\(mailbox)"
                let expected = model.acknowledge(mailbox: mailbox, ids: ids, now: now)
                try #require(try store.acknowledge(mailbox: Mailbox(mailbox), ids: ids, now: now) == expected, "\(context): \(operation)")
            case 45..<60:
                let completions = randomCompletions()
                operation = "complete \(completions.map { "\($0.id)" })"
                let expected = model.complete(completions, now: now)
                try #require(try store.completeForwarding(completions, now: now) == expected, "\(context): \(operation)")
            case 60..<72:
                let mailbox = pick(mailboxes), destination = pick(destinations)
                operation = "reroute \(mailbox) > \(destination ?? "-")"
                let expected = model.reroute(mailbox: mailbox, to: destination, now: now)
                try #require(try store.reroute(mailbox: Mailbox(mailbox), to: destination, now: now) == expected, "\(context): \(operation)")
            case 72..<84:
                operation = "expire"
                let expected = model.expire(now: now)
                try #require(try store.expireCounts(now: now) == expected, "\(context): \(operation)")
            case 84..<90:
                let mailbox = pick(mailboxes)
                operation = "purge \(mailbox)"
                let expected = model.purge(mailbox: mailbox, now: now)
                try #require(try store.purge(mailbox: Mailbox(mailbox), now: now) == expected, "\(context): \(operation)")
            default:
                // One batch as the writer makes it: accepts, then acks, completions, reroutes.
                let batch = CommitBatch(
                    envelopes: randomEnvelopes(), acknowledgements: [AcknowledgeRequest(mailbox: Mailbox("m0"), ids: model.next(mailbox: "m0", now: now).prefix(1).map(\.id))],
                    completions: [randomCompletions()], reroutes: [RerouteRequest(mailbox: Mailbox(pick(mailboxes)), destination: pick(destinations))])
                operation = "commit \(batch.envelopes.count) envelopes, reroute \(batch.reroutes[0].mailbox) > \(batch.reroutes[0].destination ?? "-")"
                let accepted = batch.envelopes.map { model.accept($0, now: now) }
                let acknowledged = batch.acknowledgements.map { model.acknowledge(mailbox: $0.mailbox.name, ids: $0.ids, now: now) }
                let completed = batch.completions.map { model.complete($0, now: now) }
                let rerouted = batch.reroutes.map { model.reroute(mailbox: $0.mailbox.name, to: $0.destination, now: now) }
                let result = store.commit(batch, now: now)
                try #require(try result.accepted.get() == accepted && result.acknowledged.get() == acknowledged, "\(context): \(operation)")
                try #require(try result.completed.get() == completed && result.rerouted.get() == rerouted, "\(context): \(operation)")
            }
            operation = "after " + operation

            for mailbox in mailboxes {
                let expected = model.next(mailbox: mailbox, now: now)
                let stored = try store.queued(mailbox, now: now)
                try #require(stored.map(\.id) == expected.map(\.id), "\(context) \(operation): order of \(mailbox)")
                try #require(stored.map(\.arrivedAt) == expected.map(\.arrivedAt) && stored.map(\.expiresAt) == expected.map(\.expiresAt),
                             "\(context) \(operation): times in \(mailbox)")
            }
            for destination in ["geneva", "hq"] {
                let expected = model.waiting(for: destination, now: now)
                let stored = try store.waiting(for: destination, now: now)
                try #require(stored.map(\.id) == expected.map(\.id), "\(context) \(operation): order for \(destination)")
                try #require(stored.map(\.hops) == expected.map(\.hops) && stored.map(\.mailbox.name) == expected.map(\.mailbox),
                             "\(context) \(operation): hops and recipients for \(destination)")
                try #require(stored.map(\.arrivedAt) == expected.map(\.arrivedAt) && stored.map(\.expiresAt) == expected.map(\.expiresAt)
                             && stored.map(\.body) == expected.map(\.body), "\(context) \(operation): envelopes for \(destination)")
            }
            try #require(try store.forwardingBacklog(now: now) == model.backlog(now: now), "\(context) \(operation): backlog")
            try #require(try store.destinations() == model.backlog(now: now).keys.sorted(), "\(context) \(operation): destinations")
            try #require(try store.occupiedMailboxes().map(\.name) == Set(model.envelopes.map(\.mailbox)).sorted(), "\(context) \(operation): occupied")
            try #require(try store.statistics(now: now) == model.statistics(now: now), "\(context) \(operation): statistics")
            try #require(try store.states(of: used) == model.memory.mapValues(\.remembered), "\(context) \(operation): states")
        }
        #expect(try queue.integrityCheck(store) == "ok")
    }
}
