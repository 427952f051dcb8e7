import Foundation
import GRDB
import Testing
import ValiseTestSupport
@testable import ValiseStore

/// A revoked recipient's purged envelopes leave tombstones that say so, and queues written
/// before reasons were stored open with theirs.
@Suite("Queue: undeliverable tombstones")
struct QueueUndeliverableTests {
    let file = QueueFile()

    @Test("a purge leaves each envelope's id undeliverable (recipient revoked) since the purge, for the retention period", arguments: StoreKind.allCases)
    func tombstoneAfterPurge(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open(limits: limits(retention: 1000))
        _ = try store.accept([envelope("carol", 1, .flash), envelope("carol", 2), envelope("bob", 3)], now: queueEpoch)
        _ = try store.acknowledge(mailbox: Mailbox("carol"), ids: [messageID(2)], now: queueEpoch + 5)
        #expect(try store.purge(mailbox: Mailbox("carol"), now: queueEpoch + 10) == 1)

        let states = try store.states(of: [messageID(1), messageID(2), messageID(3)], now: queueEpoch + 20)
        #expect(states[messageID(1)] == RememberedMessage(state: .undeliverable, since: queueEpoch + 10, reason: .recipientRevoked))
        #expect(states[messageID(2)] == RememberedMessage(state: .delivered, since: queueEpoch + 5))
        #expect(states[messageID(3)] == RememberedMessage(state: .pending, since: queueEpoch))
        #expect(try store.statistics(now: queueEpoch + 20).remembered[.undeliverable] == 1)

        // Kept, like an expired one's, until its expiry plus the retention period.
        let forgetAt = queueEpoch + TTLClass.day.seconds + 1000
        _ = try store.expire(now: forgetAt - 1)
        #expect(try store.states(of: [messageID(1)], now: forgetAt - 1)[messageID(1)]?.reason == .recipientRevoked)
        _ = try store.expire(now: forgetAt)
        #expect(try store.states(of: [messageID(1)], now: forgetAt)[messageID(1)] == nil)
    }

    /// SQLite only: a file written by an earlier version (PostgreSQL's schema starts at this version).
    @Test("a queue written before reasons were stored opens; its purged ids read as undeliverable (recipient revoked)")
    func upgradeKeepsPurgedIDs() throws {
        // The queue as the previous version made it: every migration before "message-reason".
        let pool = try file.earlier(upTo: "prekeys-v2")
        try pool.write { db in
            for (n, state) in [(1, 4), (2, 1), (3, 3)] {
                try db.execute(
                    sql: "INSERT INTO message (id, mailbox, state, since, expires_at, forget_at) VALUES (?, 'carol', ?, ?, ?, ?)",
                    arguments: [Data(messageID(n).bytes), state, Int64(queueEpoch), Int64(queueEpoch + 3600), Int64(queueEpoch + 9_000_000)])
            }
        }
        try pool.close()

        let store = try file.open()
        let states = try store.states(of: [messageID(1), messageID(2), messageID(3)], now: queueEpoch)
        #expect(states[messageID(1)] == RememberedMessage(state: .undeliverable, since: queueEpoch, reason: .recipientRevoked))
        #expect(states[messageID(2)] == RememberedMessage(state: .pending, since: queueEpoch))
        #expect(states[messageID(3)] == RememberedMessage(state: .expiredUndelivered, since: queueEpoch))
    }
}
