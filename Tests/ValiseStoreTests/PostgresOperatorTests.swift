#if Postgres
import Foundation
import Testing
import ValisePostgres
import ValiseStore

/// The operator's actions on a queue that two nodes share: whichever node's control socket
/// acts, both see the result, and a release is announced to every node. Envelopes are put
/// in with SQL (the queue's own accept is another suite's).
@Suite("PostgreSQL operator queue shared by nodes", .enabled(if: TestPostgres.isAvailable))
struct PostgresOperatorTests {
    let schema = TestPostgres.freshSchema()
    /// Names of this test's own: the announcement channel is shared with other suites.
    let tag = UUID().uuidString.prefix(8).lowercased()

    func name(_ base: String) -> String { "\(base)-\(tag)" }

    /// Two envelopes for alice, one for bob, and one for carol waiting to be forwarded to hq.
    func filled() throws -> (PostgresEnvelopeStore, PostgresEnvelopeStore) {
        let first = try TestPostgres.store(schema: schema)
        let second = try TestPostgres.store(schema: schema)
        try first.insertQueued(messageID(1), mailbox: name("alice"), arrivedAt: queueEpoch + 10, expiresAt: queueEpoch + 1000, size: 100)
        try first.insertQueued(
            messageID(2), mailbox: name("alice"), precedence: .immediate, arrivedAt: queueEpoch + 30, expiresAt: queueEpoch + 1000, size: 50)
        try second.insertQueued(messageID(3), mailbox: name("bob"), arrivedAt: queueEpoch + 20, expiresAt: queueEpoch + 1000, size: 70)
        try second.insertQueued(
            messageID(4), mailbox: name("carol"), destination: name("hq"), arrivedAt: queueEpoch + 5, expiresAt: queueEpoch + 1000, size: 30)
        return (first, second)
    }

    @Test("lists both queues oldest first, by mailbox and with a limit, and each mailbox's backlog, largest first")
    func listing() throws {
        let (first, second) = try filled()
        defer { first.close(); second.close() }
        let all = try first.queued(mailbox: nil, limit: 10, now: queueEpoch + 40)
        #expect(all.map(\.id) == [messageID(4), messageID(1), messageID(3), messageID(2)])
        #expect(all[0] == QueuedEnvelope(
            id: messageID(4), mailbox: Mailbox(name("carol")), destination: name("hq"), precedence: .routine, arrivedAt: queueEpoch + 5,
            expiresAt: queueEpoch + 1000, size: 30, held: false))
        #expect(all[3].precedence == .immediate && all[3].destination == nil)
        #expect(try second.queued(mailbox: Mailbox(name("alice")), limit: 10, now: queueEpoch).map(\.id) == [messageID(1), messageID(2)])
        #expect(try second.queued(mailbox: nil, limit: 2, now: queueEpoch).count == 2)
        #expect(try second.queued(mailbox: nil, limit: 0, now: queueEpoch).isEmpty)

        let backlog = try second.mailboxBacklog(now: queueEpoch + 40)
        #expect(backlog == [
            MailboxBacklog(mailbox: Mailbox(name("alice")), count: 2, bytes: 150, oldestAge: 30, held: 0),
            MailboxBacklog(mailbox: Mailbox(name("bob")), count: 1, bytes: 70, oldestAge: 20, held: 0),
        ])
        #expect(try first.storeBytes() > 0)
    }

    @Test("held on one node, held for both; released on the other, announced for the mailbox and the destination")
    func holdAndRelease() async throws {
        let (first, second) = try filled()
        defer { first.close(); second.close() }
        try await AnnouncementWatcher.watching(schema: first.database.configuration.schema) { watcher in
            try await holdAndRelease(first, second, watcher)
        }
    }

    private func holdAndRelease(_ first: PostgresEnvelopeStore, _ second: PostgresEnvelopeStore, _ watcher: AnnouncementWatcher) async throws {
        let held = try first.setHeld([messageID(1), messageID(4), messageID(99)], held: true)
        #expect(Set(held.keys) == [messageID(1), messageID(4)])
        #expect(held.values.allSatisfy { $0.held })
        #expect(try second.queued(mailbox: nil, limit: 10, now: queueEpoch).filter(\.held).map(\.id) == [messageID(4), messageID(1)])
        #expect(try second.mailboxBacklog(now: queueEpoch).first { $0.mailbox.name == name("alice") }?.held == 1)
        // Holding is not announced: nothing new became deliverable.
        let afterHold = try await watcher.changesSoFar()
        #expect(!afterHold.contains(.mailboxes([Mailbox(name("alice"))])))

        let released = try second.setHeld([messageID(1), messageID(4)], held: false)
        #expect(released.count == 2 && released.values.allSatisfy { !$0.held })
        #expect(try first.queued(mailbox: nil, limit: 10, now: queueEpoch).allSatisfy { !$0.held })
        let afterRelease = try await watcher.changesSoFar()
        #expect(afterRelease.contains(.mailboxes([Mailbox(name("alice"))])))
        #expect(afterRelease.contains(.destinations([name("hq")])))
    }

    @Test("deleted on one node: gone for both, the room given back, remembered as deleted by the operator")
    func deleteByOperator() throws {
        let (first, second) = try filled()
        defer { first.close(); second.close() }
        let now = queueEpoch + 500
        let deleted = try second.deleteByOperator([messageID(2), messageID(4), messageID(99)], now: now)
        #expect(Set(deleted.keys) == [messageID(2), messageID(4)])
        #expect(deleted[messageID(4)]?.destination == name("hq"))
        #expect(try first.queued(mailbox: nil, limit: 10, now: now).map(\.id) == [messageID(1), messageID(3)])
        for id in [messageID(2), messageID(4)] {
            let row = try #require(try first.rememberedRow(id))
            #expect(row.state == MessageState.undeliverable.rawValue && row.since == now)
            #expect(row.reason == UndeliverableReason.deletedByOperator.rawValue)
        }
        #expect(try first.rememberedRow(messageID(1))?.state == MessageState.pending.rawValue)
        // alice keeps one envelope's room; carol and hq have none left (a row at zero or none).
        #expect(try first.usage("mailbox_usage", name("alice")) == [1, 100])
        #expect(try first.usage("mailbox_usage", name("carol")) ?? [0, 0] == [0, 0])
        #expect(try first.usage("destination_usage", name("hq")) ?? [0, 0] == [0, 0])
        // Deleting again finds nothing and changes nothing.
        #expect(try first.deleteByOperator([messageID(2)], now: now + 1).isEmpty)
        #expect(try first.rememberedRow(messageID(2))?.since == now)
    }
}
#endif
