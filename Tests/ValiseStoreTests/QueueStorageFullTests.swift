import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Queue: storage full")
struct QueueStorageFullTests {
    @Test("with a size cap, accepts end in storageFull; what was accepted stays intact and deliverable; the failure leaves nothing", arguments: StoreKind.allCases)
    func storageFull(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(maximumBytes: 128 * 1024)
        var accepted: [IncomingEnvelope] = []
        var refused: IncomingEnvelope?
        for n in 1...400 {
            let incoming = envelope("alice", n, Precedence(rawValue: n % 4)!, body: bodyBytes(n, count: 1500))
            let before = try store.statistics(now: queueEpoch)
            let outcome = try store.accept([incoming], now: queueEpoch)
            if outcome == [.refused(.storageFull)] {
                refused = incoming
                // Nothing of the failed accept remains: not the envelope, not its id, not its quota.
                #expect(try store.statistics(now: queueEpoch) == before)
                #expect(try store.state(of: incoming.id) == nil)
                break
            }
            try #require(outcome == [fresh(queueEpoch)], "envelope \(n): \(outcome)")
            accepted.append(incoming)
        }
        let failed = try #require(refused, "128 KiB never filled up")
        #expect(accepted.count >= 5)

        // Refused again, also in a batch: the whole batch, and still nothing left behind.
        let batch = [failed, envelope("bob", 1000, body: bodyBytes(1000, count: 1500))]
        #expect(try store.accept(batch, now: queueEpoch + 1) == [.refused(.storageFull), .refused(.storageFull)])
        #expect(try store.states(of: batch.map(\.id)).isEmpty)

        // Everything accepted before is there, byte for byte, in delivery order.
        let queued = try store.queued("alice")
        let expectedOrder = Precedence.allCases.reversed().flatMap { precedence in
            accepted.filter { $0.precedence == precedence }.map(\.id)
        }
        #expect(queued.map(\.id) == expectedOrder)
        let bodies = Dictionary(uniqueKeysWithValues: accepted.map { ($0.id, $0.body) })
        #expect(queued.allSatisfy { bodies[$0.id] == $0.body })
        #expect(try queue.integrityCheck(store) == "ok")

        // A full store still records acknowledgements, and deleting makes room again.
        let delivered = Array(queued.prefix(3).map(\.id))
        #expect(try store.acknowledge(mailbox: Mailbox("alice"), ids: delivered, now: queueEpoch + 2) == 3)
        #expect(try store.purge(mailbox: Mailbox("alice"), now: queueEpoch + 3) == accepted.count - 3)
        #expect(try store.accept([failed], now: queueEpoch + 4) == [fresh(queueEpoch + 4)])
    }

    @Test("a failed accept does not count against the mailbox's quota", arguments: StoreKind.allCases)
    func failedAcceptLeavesNoQuota(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        var accepted = 0
        var nextNumber = 0
        do {
            let store = try queue.open(maximumBytes: 96 * 1024)
            while true {
                nextNumber += 1
                let outcome = try store.accept([envelope("carol", nextNumber, body: bodyBytes(nextNumber, count: 2000))], now: queueEpoch)
                if outcome == [.refused(.storageFull)] { break }
                try #require(outcome == [fresh(queueEpoch)])
                accepted += 1
                try #require(accepted < 400, "96 KiB never filled up")
            }
            // Fail a few more times: none of them may leave a count behind.
            for extra in 1...3 {
                let outcome = try store.accept([envelope("carol", nextNumber + extra, body: bodyBytes(1, count: 2000))], now: queueEpoch)
                #expect(outcome == [.refused(.storageFull)])
            }
        }
        // Reopened without the size cap and with room for exactly one more message.
        let store = try queue.open(limits: limits(messages: accepted + 1))
        #expect(try store.accept([envelope("carol", 9999)], now: queueEpoch) == [fresh(queueEpoch)])
        #expect(try store.accept([envelope("carol", 9998)], now: queueEpoch) == [.refused(.mailboxFull)])
        #expect(try store.queued("carol").count == accepted + 1)
    }
}
