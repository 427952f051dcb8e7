#if Postgres
import Foundation
import Testing
@testable import ValisePostgres
import ValiseStore

/// Two nodes of one relay: two stores on one schema, as two valised processes on one
/// database. The queue's general contract is the conformance suite's; these are what only
/// sharing adds (races between nodes, leases, the sweep lock, announcements).
@Suite("PostgreSQL shared queue", .enabled(if: TestPostgres.isAvailable))
struct PostgresSharedQueueTests {
    /// Two stores on a fresh schema.
    static func nodes(limits: QueueLimits = QueueLimits()) throws -> (PostgresEnvelopeStore, PostgresEnvelopeStore) {
        let schema = TestPostgres.freshSchema()
        return (try TestPostgres.store(schema: schema, limits: limits), try TestPostgres.store(schema: schema, limits: limits))
    }

    /// Runs both closures at once on threads of their own and waits for both.
    static func together<A: Sendable, B: Sendable>(
        _ first: @escaping @Sendable () throws -> A, _ second: @escaping @Sendable () throws -> B
    ) throws -> (A, B) {
        let results = Locked<(Result<A, any Error>?, Result<B, any Error>?)>((nil, nil))
        let done = CompletionCounter()
        Thread.detachNewThread {
            let result = Result { try first() }
            results.withValue { $0.0 = result }
            done.signal()
        }
        Thread.detachNewThread {
            let result = Result { try second() }
            results.withValue { $0.1 = result }
            done.signal()
        }
        #expect(done.wait(for: 2))
        let (a, b) = results.current
        return (try a!.get(), try b!.get())
    }

    @Test("the same ids accepted on both nodes at once are stored once; the other node's answer is a duplicate")
    func concurrentDuplicates() throws {
        let (a, b) = try Self.nodes()
        defer { a.close(); b.close() }
        let batch = (0..<40).map { envelope("alice", $0) }
        let (first, second) = try Self.together({ try a.accept(batch, now: queueEpoch) }, { try b.accept(batch, now: queueEpoch) })
        for index in batch.indices {
            guard case .accepted(_, let firstDuplicate) = first[index], case .accepted(_, let secondDuplicate) = second[index] else {
                Issue.record("envelope \(index) refused: \(first[index]), \(second[index])")
                continue
            }
            #expect(firstDuplicate != secondDuplicate)
        }
        #expect(try a.queuedIDs("alice") == batch.map(\.id))
        #expect(try b.statistics(now: queueEpoch).count == batch.count)
    }

    @Test("an id taken on one node is in use for another mailbox on the other")
    func idInUseAcrossNodes() throws {
        let (a, b) = try Self.nodes()
        defer { a.close(); b.close() }
        #expect(try a.accept([envelope("alice", 1)], now: queueEpoch) == [fresh(queueEpoch)])
        #expect(try b.accept([envelope("bob", 1)], now: queueEpoch) == [.refused(.idInUse)])
        #expect(try b.accept([envelope("alice", 1)], now: queueEpoch + 5) == [.accepted(expiresAt: queueEpoch + TTLClass.day.seconds, duplicate: true)])
    }

    @Test("a mailbox's quota holds when both nodes fill it at once")
    func quotaUnderConcurrentAccepts() throws {
        let (a, b) = try Self.nodes(limits: limits(messages: 10))
        defer { a.close(); b.close() }
        let fromA = (0..<10).map { envelope("alice", $0) }
        let fromB = (100..<110).map { envelope("alice", $0) }
        let (first, second) = try Self.together({ try a.accept(fromA, now: queueEpoch) }, { try b.accept(fromB, now: queueEpoch) })
        let outcomes = first + second
        #expect(outcomes.count { if case .accepted = $0 { true } else { false } } == 10)
        #expect(outcomes.count { $0 == .refused(.mailboxFull) } == 10)
        #expect(try a.queued("alice").count == 10)
        // Refused ids were not remembered: the room freed, they can come again.
        let refused = zip(fromA + fromB, outcomes).filter { $0.1 == .refused(.mailboxFull) }.map(\.0)
        #expect(try a.states(of: refused.map(\.id)).isEmpty)
    }

    @Test("maxStoreBytes refuses as storage full what would pass it, counting both nodes' envelopes")
    func storeBytes() throws {
        let schema = TestPostgres.freshSchema()
        let a = try TestPostgres.store(schema: schema, maximumBytes: 1_000)
        let b = try TestPostgres.store(schema: schema, maximumBytes: 1_000)
        defer { a.close(); b.close() }
        #expect(try a.accept([envelope("alice", 1, body: Array(repeating: 1, count: 600))], now: queueEpoch) == [fresh(queueEpoch)])
        let outcomes = try b.accept(
            [envelope("bob", 2, body: Array(repeating: 2, count: 600)), envelope("bob", 3, body: Array(repeating: 3, count: 300))], now: queueEpoch)
        #expect(outcomes == [.refused(.storageFull), fresh(queueEpoch)])
        #expect(try a.acknowledge(mailbox: Mailbox("alice"), ids: [messageID(1)], now: queueEpoch) == 1)
        #expect(try b.accept([envelope("bob", 2, body: Array(repeating: 2, count: 600))], now: queueEpoch) == [fresh(queueEpoch)])
    }

    @Test("renewal keeps only open connections' leases: one whose release never reached the database loses them at expiry")
    func renewalKeepsOpenConnectionsOnly() throws {
        let (a, b) = try Self.nodes()
        defer { a.close(); b.close() }
        _ = try a.accept([envelope("carol", 1), envelope("carol", 2)], now: queueEpoch)
        let closed = LeaseHolder(node: a.node, connection: 1)
        let open = LeaseHolder(node: a.node, connection: 2)
        #expect(try a.leaseForDelivery(mailbox: Mailbox("carol"), holder: closed, excluding: [], limit: 1, now: queueEpoch).map(\.id) == [messageID(1)])
        #expect(try a.leaseForDelivery(mailbox: Mailbox("carol"), holder: open, excluding: [], limit: 10, now: queueEpoch).isEmpty)
        // The node renews its open connection only; the closed one's lease runs out.
        try a.renewLeases(of: [open.connection], now: queueEpoch + 20)
        let later = queueEpoch + SharedQueueLease.seconds + 1
        let taken = try a.leaseForDelivery(mailbox: Mailbox("carol"), holder: open, excluding: [], limit: 10, now: later)
        #expect(taken.map(\.id) == [messageID(1), messageID(2)])
    }

    @Test("an envelope leased on one node holds back the other node's delivery until released or expired")
    func leases() throws {
        let (a, b) = try Self.nodes()
        defer { a.close(); b.close() }
        _ = try a.accept([envelope("alice", 1), envelope("alice", 2, .flash), envelope("alice", 3)], now: queueEpoch)
        let onA = LeaseHolder(node: a.node, connection: 7)
        let onB = LeaseHolder(node: b.node, connection: 7)
        let leased = try a.leaseForDelivery(mailbox: Mailbox("alice"), holder: onA, excluding: [], limit: 1, now: queueEpoch)
        #expect(leased.map(\.id) == [messageID(2)])
        // Nothing overtakes the FLASH envelope A is delivering.
        #expect(try b.leaseForDelivery(mailbox: Mailbox("alice"), holder: onB, excluding: [], limit: 10, now: queueEpoch).isEmpty)
        // A's own connection goes on after its in-flight envelope.
        let more = try a.leaseForDelivery(mailbox: Mailbox("alice"), holder: onA, excluding: [messageID(2)], limit: 10, now: queueEpoch)
        #expect(more.map(\.id) == [messageID(1), messageID(3)])
        #expect(try b.leaseForDelivery(mailbox: Mailbox("alice"), holder: onB, excluding: [], limit: 10, now: queueEpoch).isEmpty)

        // Renewed by A's node, the leases outlive their first term...
        try a.renewLeases(of: [7], now: queueEpoch + 20)
        let afterFirstTerm = queueEpoch + SharedQueueLease.seconds + 1
        #expect(try b.leaseForDelivery(mailbox: Mailbox("alice"), holder: onB, excluding: [], limit: 10, now: afterFirstTerm).isEmpty)
        // ...and once they expire (A stopped renewing), B delivers, in order.
        let expired = queueEpoch + 20 + SharedQueueLease.seconds + 1
        let taken = try b.leaseForDelivery(mailbox: Mailbox("alice"), holder: onB, excluding: [], limit: 10, now: expired)
        #expect(taken.map(\.id) == [messageID(2), messageID(1), messageID(3)])
        #expect(try a.leaseForDelivery(mailbox: Mailbox("alice"), holder: onA, excluding: [], limit: 10, now: expired).isEmpty)

        // Released (B's connection closed), they go to whoever asks next; an ack deletes
        // whatever the lease.
        try b.releaseLeases(of: onB)
        #expect(try a.leaseForDelivery(mailbox: Mailbox("alice"), holder: onA, excluding: [], limit: 1, now: expired).map(\.id) == [messageID(2)])
        #expect(try b.acknowledge(mailbox: Mailbox("alice"), ids: [messageID(2)], now: expired) == 1)
        #expect(try b.leaseForDelivery(mailbox: Mailbox("alice"), holder: onB, excluding: [], limit: 10, now: expired).map(\.id)
            == [messageID(1), messageID(3)])
    }

    @Test("a forwarding queue's envelopes are leased to one relay link at a time")
    func forwardingLeases() throws {
        let (a, b) = try Self.nodes()
        defer { a.close(); b.close() }
        let outgoing = IncomingEnvelope(mailbox: Mailbox("carol"), id: messageID(1), precedence: .routine, ttl: .day, destination: "field", body: bodyBytes(1))
        _ = try a.accept([outgoing], now: queueEpoch)
        let linkA = LeaseHolder(node: a.node, connection: 1)
        let linkB = LeaseHolder(node: b.node, connection: 1)
        #expect(try a.leaseForForwarding(destination: "field", holder: linkA, excluding: [], limit: 5, now: queueEpoch).map(\.id) == [messageID(1)])
        #expect(try b.leaseForForwarding(destination: "field", holder: linkB, excluding: [], limit: 5, now: queueEpoch).isEmpty)
        try a.releaseLeases(of: linkA)
        #expect(try b.leaseForForwarding(destination: "field", holder: linkB, excluding: [], limit: 5, now: queueEpoch).map(\.id) == [messageID(1)])
    }

    @Test("two nodes sweeping at once count each expired envelope once")
    func sweepOnce() throws {
        let (a, b) = try Self.nodes()
        defer { a.close(); b.close() }
        _ = try a.accept((0..<30).map { envelope("alice", $0, ttl: .hour) }, now: queueEpoch)
        let later = queueEpoch + TTLClass.hour.seconds
        let (first, second) = try Self.together({ try a.expireCounts(now: later) }, { try b.expireCounts(now: later) })
        #expect(first.local + second.local == 30)
        #expect(try a.state(of: messageID(0)) == RememberedMessage(state: .expiredUndelivered, since: later))
        #expect(try b.expireCounts(now: later).total == 0)
    }

    @Test("batches of sends and acknowledgements from both nodes at once on the same mailboxes keep the totals true")
    func concurrentBatches() throws {
        let (a, b) = try Self.nodes()
        defer { a.close(); b.close() }
        let mailboxes = ["m0", "m1", "m2", "m3"]
        // Round r of a node: a send to every mailbox (in an order of the node's own, so that
        // the nodes take rows in crossing orders) and the acknowledgement of round r-1's.
        @Sendable func rounds(_ store: PostgresEnvelopeStore, salt: UInt64, order: [String]) throws -> Int {
            var accepted = 0
            for round in 0..<15 {
                let sends = order.enumerated().map { envelope($0.element, round * 10 + $0.offset, salt: salt) }
                let acks = round == 0 ? [] : order.enumerated().map {
                    AcknowledgeRequest(mailbox: Mailbox($0.element), ids: [messageID((round - 1) * 10 + $0.offset, salt: salt)])
                }
                let result = store.commit(CommitBatch(envelopes: sends, acknowledgements: acks), now: queueEpoch)
                accepted += try result.accepted.get().count { $0 == fresh(queueEpoch) }
                #expect(try result.acknowledged.get() == acks.map { _ in 1 })
            }
            return accepted
        }
        let (first, second) = try Self.together(
            { try rounds(a, salt: 1, order: mailboxes) }, { try rounds(b, salt: 2, order: mailboxes.reversed()) })
        #expect(first == 60 && second == 60)
        #expect(try a.statistics(now: queueEpoch).count == 2 * mailboxes.count)
        for mailbox in mailboxes {
            let left = try b.queuedIDs(mailbox)
            #expect(try a.acknowledge(mailbox: Mailbox(mailbox), ids: left, now: queueEpoch) == 2)
        }
        // Every usage row back to zero: nothing is occupied.
        #expect(try b.occupiedMailboxes().isEmpty)
    }
}
#endif
