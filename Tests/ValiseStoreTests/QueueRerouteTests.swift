import Foundation
import GRDB
import Testing
import ValiseTestSupport
@testable import ValiseStore

/// Moving a recipient's mail between queues, the forwarding queues across a restart, on a
/// full disk, through the group-commit writer, and in a queue written before them.
@Suite("Queue: rerouting and forwarding durability")
struct QueueRerouteTests {
    let file = QueueFile()

    @Test("reroute moves a recipient's mail from the mailbox and other queues to a destination (one more hop from the mailbox), and back", arguments: StoreKind.allCases)
    func rerouteBothWays(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        var bounds = limits(messages: 3)
        bounds.maximumMessagesPerDestination = 1
        let store = try queue.open(limits: bounds)
        let carried = IncomingEnvelope(mailbox: Mailbox("bob"), id: messageID(2), precedence: .flash, ttl: .week, requestedTTL: 4,
                                       lifetime: CarriedLifetime(age: 40, remaining: 1000), hops: 2, body: bodyBytes(2))
        _ = try store.accept([envelope("bob", 1), carried, outbound("bob", 3, to: "hq", .priority), envelope("carol", 4)], now: queueEpoch)
        let before = Dictionary(uniqueKeysWithValues: try store.queued("bob").map { ($0.id, $0) })

        // Quotas are not checked: geneva's single place does not stop three envelopes.
        #expect(try store.reroute(mailbox: Mailbox("bob"), to: "geneva", now: queueEpoch + 5) == 3)
        #expect(try store.queued("bob").isEmpty)
        #expect(try store.waiting(for: "hq").isEmpty)
        let moved = try store.waiting(for: "geneva")
        #expect(moved.map(\.id) == [2, 3, 1].map { messageID($0) })
        #expect(moved.map(\.hops) == [3, 1, 2], "from the mailbox +1, from another forwarding queue unchanged")
        for envelope in moved {
            if let local = before[envelope.id] {
                #expect(envelope.arrivedAt == local.arrivedAt && envelope.expiresAt == local.expiresAt)
                #expect(envelope.precedence == local.precedence && envelope.requestedTTL == local.requestedTTL && envelope.body == local.body)
            }
        }
        #expect(moved.first?.arrivedAt == queueEpoch - 40 && moved.first?.expiresAt == queueEpoch + 1000 && moved.first?.requestedTTL == 4)
        #expect(try store.destinations() == ["geneva"])
        #expect(try store.forwardingBacklog(now: queueEpoch + 5)["geneva"]?.count == 3)
        #expect(try store.statistics(now: queueEpoch + 5).mailboxes == 1, "only carol's mailbox is local now")
        // The mailbox's bound still counts bob's three.
        #expect(try store.accept([envelope("bob", 5)], now: queueEpoch + 5) == [.refused(.mailboxFull)])
        #expect(try store.state(of: messageID(1)) == RememberedMessage(state: .pending, since: queueEpoch))

        // And back home: arrival order within the mailbox, hops as they were carried.
        #expect(try store.reroute(mailbox: Mailbox("bob"), to: nil, now: queueEpoch + 6) == 3)
        let home = try store.queued("bob")
        #expect(home.map(\.id) == [2, 3, 1].map { messageID($0) })
        #expect(home.first?.arrivedAt == queueEpoch - 40 && home.first?.expiresAt == queueEpoch + 1000)
        #expect(try store.waiting(for: "geneva").isEmpty)
        #expect(try store.destinations().isEmpty)
        #expect(try store.reroute(mailbox: Mailbox("bob"), to: nil, now: queueEpoch + 7) == 0)
        #expect(try store.reroute(mailbox: Mailbox("nobody"), to: "geneva", now: queueEpoch + 7) == 0)
        #expect(try store.destinations().isEmpty)
        #expect(try queue.integrityCheck(store) == "ok")
    }

    @Test("an answer for an envelope moved back to the mailbox is ignored; one moved to another relay's queue still completes", arguments: StoreKind.allCases)
    func completionAfterReroute(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([outbound("bob", 1), outbound("carol", 2)], now: queueEpoch)
        _ = try store.reroute(mailbox: Mailbox("bob"), to: nil, now: queueEpoch + 1)
        _ = try store.reroute(mailbox: Mailbox("carol"), to: "hq", now: queueEpoch + 1)
        let answers = [1, 2].map { ForwardCompletion(id: messageID($0), destination: "geneva", outcome: .transferred) }
        #expect(try store.completeForwarding(answers, now: queueEpoch + 2) == 1)
        #expect(try store.queuedIDs("bob") == [messageID(1)])
        #expect(try store.state(of: messageID(1))?.state == .pending)
        #expect(try store.state(of: messageID(2)) == RememberedMessage(state: .forwarded, since: queueEpoch + 2, forwardedTo: "geneva"))
        #expect(try store.destinations().isEmpty)
    }

    @Test("after closing and reopening, the forwarding queues, their totals and the forwarded tombstones are all there", arguments: StoreKind.allCases)
    func reopen(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        var bounds = limits()
        bounds.maximumMessagesPerDestination = 4
        let later = queueEpoch + 100
        let snapshot: [OutgoingEnvelope]
        do {
            let store = try queue.open(limits: bounds)
            _ = try store.accept((1...5).map { outbound("bob", $0, Precedence(rawValue: $0 % 4)!) } + [envelope("carol", 6)], now: queueEpoch)
            _ = try store.completeForwarding([ForwardCompletion(id: messageID(1), destination: "geneva", outcome: .transferred)], now: queueEpoch + 10)
            _ = try store.reroute(mailbox: Mailbox("carol"), to: "geneva", now: queueEpoch + 20)
            snapshot = try store.waiting(for: "geneva", now: later)
            #expect(snapshot.count == 4)
        }
        let reopened = try queue.open(limits: bounds)
        #expect(try reopened.waiting(for: "geneva", now: later) == snapshot)
        #expect(try reopened.state(of: messageID(1)) == RememberedMessage(state: .forwarded, since: queueEpoch + 10, forwardedTo: "geneva"))
        #expect(try reopened.destinations() == ["geneva"])
        // The destination's total survived: it is full.
        #expect(try reopened.accept([outbound("dave", 7)], now: later) == [.refused(.destinationFull)])
        #expect(try reopened.accept([outbound("bob", 2)], now: later) == [.accepted(expiresAt: queueEpoch + TTLClass.day.seconds, duplicate: true)])
        // Arrival order continues after the restart.
        _ = try reopened.completeForwarding([ForwardCompletion(id: messageID(2), destination: "geneva", outcome: .transferred)], now: later)
        _ = try reopened.accept([outbound("dave", 8)], now: later)
        let waiting = try reopened.waiting(for: "geneva", now: later)
        #expect(waiting.last?.id == messageID(8) && waiting.dropLast().allSatisfy { $0.sequence < waiting.last!.sequence })
        #expect(try queue.integrityCheck(reopened) == "ok")
    }

    /// SQLite only: a file written by an earlier version (PostgreSQL's schema starts at this version).
    @Test("a queue written before forwarding opens: its envelopes have one hop, and a reroute counts the next")
    func upgrade() throws {
        let pool = try file.earlier(upTo: "envelope-requested-ttl")
        try pool.write { db in
            let id = Data(messageID(1).bytes)
            try db.execute(
                sql: """
                    INSERT INTO envelope (mailbox, id, precedence, arrived_at, expires_at, size, body, requested_ttl)
                    VALUES ('bob', ?, 1, ?, ?, 3, x'010203', 2)
                    """,
                arguments: [id, Int64(queueEpoch), Int64(queueEpoch + 86_400)])
            try db.execute(
                sql: "INSERT INTO message (id, mailbox, state, since, expires_at, forget_at) VALUES (?, 'bob', 1, ?, ?, ?)",
                arguments: [id, Int64(queueEpoch), Int64(queueEpoch + 86_400), Int64(queueEpoch + 90 * 86_400)])
            try db.execute(sql: "INSERT INTO mailbox_usage (mailbox, count, bytes) VALUES ('bob', 1, 3)")
        }
        try pool.close()
        let store = try file.open()
        #expect(try store.state(of: messageID(1)) == RememberedMessage(state: .pending, since: queueEpoch))
        #expect(try store.reroute(mailbox: Mailbox("bob"), to: "geneva", now: queueEpoch) == 1)
        let moved = try #require(try store.waiting(for: "geneva").first)
        #expect(moved.hops == 2 && moved.body == [1, 2, 3] && moved.requestedTTL == 2 && moved.precedence == .priority)
    }

    @Test("on a full store, completions still go through and make room; new envelopes for a destination are refused as storage full", arguments: StoreKind.allCases)
    func storageFull(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(maximumBytes: 128 * 1024)
        var accepted: [MessageID] = []
        for n in 1...400 {
            let outcome = try store.accept([outbound("bob", n, body: bodyBytes(n, count: 1500))], now: queueEpoch)
            if outcome == [.refused(.storageFull)] {
                #expect(try store.state(of: messageID(n)) == nil)
                break
            }
            try #require(outcome == [fresh(queueEpoch)], "envelope \(n): \(outcome)")
            accepted.append(messageID(n))
        }
        try #require(accepted.count >= 5 && accepted.count < 400, "128 KiB never filled up")
        let backlog = try store.forwardingBacklog(now: queueEpoch)["geneva"]
        #expect(backlog?.count == accepted.count)

        let answers = accepted.map { ForwardCompletion(id: $0, destination: "geneva", outcome: .transferred) }
        #expect(try store.completeForwarding(answers, now: queueEpoch + 1) == accepted.count)
        #expect(try store.state(of: accepted[0])?.state == .forwarded)
        #expect(try store.destinations().isEmpty)
        #expect(try store.accept([outbound("bob", 1000)], now: queueEpoch + 2) == [fresh(queueEpoch + 2)])
        #expect(try queue.integrityCheck(store) == "ok")
    }

    @Test("the writer puts completions and reroutes in the same transaction as the batch's accepts and acknowledgements", arguments: StoreKind.allCases)
    func groupCommit(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let gated = GatedStore(try queue.open())
        _ = try gated.accept([outbound("bob", 1), outbound("bob", 2), envelope("carol", 3), envelope("dave", 4)], now: queueEpoch)
        let writer = GroupCommitWriter(store: gated, clock: { queueEpoch + 10 })
        writer.start()
        let results = Locked<[String: Int]>([:])
        let done = CompletionCounter()
        @Sendable func record(_ name: String) -> GroupCommitWriter.CountCompletion {
            { result in
                results.withValue { $0[name] = (try? result.get()) ?? -1 }
                done.signal()
            }
        }

        gated.arm()
        writer.accept(envelope("erin", 5)) { _ in done.signal() }
        try #require(gated.waitUntilHeld())
        // The writer is inside the first commit: these four jobs form the next batch.
        writer.accept(envelope("carol", 6)) { _ in done.signal() }
        writer.acknowledge(mailbox: Mailbox("dave"), ids: [messageID(4)], completion: record("ack"))
        writer.completeForwarding([ForwardCompletion(id: messageID(1), destination: "geneva", outcome: .transferred),
                                   ForwardCompletion(id: messageID(9), destination: "geneva", outcome: .transferred)],
                                  completion: record("complete"))
        writer.reroute(mailbox: Mailbox("carol"), to: "hq", completion: record("reroute"))
        gated.release()
        #expect(done.wait(for: 5))
        writer.stop()

        let batches = gated.commitBatches
        #expect(batches.count == 2)
        let second = try #require(batches.last)
        #expect(second.envelopes.count == 1 && second.acknowledgements.count == 1 && second.completions.count == 1 && second.reroutes.count == 1)
        // The reroute ran after the accept in the same batch: carol's new envelope moved too.
        #expect(results.current == ["ack": 1, "complete": 1, "reroute": 2])
        #expect(try gated.waiting(for: "hq").map(\.id) == [messageID(3), messageID(6)])
        #expect(try gated.state(of: messageID(1)) == RememberedMessage(state: .forwarded, since: queueEpoch + 10, forwardedTo: "geneva"))
        #expect(writer.currentCounters.completedForwards == 1)
    }

    @Test("the writer's expiry job tells local expiries from each forwarding queue's", arguments: StoreKind.allCases)
    func writerExpiry(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([outbound("bob", 1, ttl: .hour), envelope("carol", 2, ttl: .hour)], now: queueEpoch)
        let writer = GroupCommitWriter(store: store, clock: { queueEpoch + TTLClass.hour.seconds })
        writer.start()
        let counts = Locked<ExpiryCounts?>(nil)
        let total = Locked<Int?>(nil)
        let done = CompletionCounter()
        writer.expireCounts { result in counts.withValue { $0 = try? result.get() }; done.signal() }
        writer.expire { result in total.withValue { $0 = try? result.get() }; done.signal() }
        #expect(done.wait(for: 2))
        writer.stop()
        #expect(counts.current == ExpiryCounts(local: 1, forwarding: ["geneva": 1]))
        #expect(total.current == 0, "the second sweep found nothing left")
    }
}
