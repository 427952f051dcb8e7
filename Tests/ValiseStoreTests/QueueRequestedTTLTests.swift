import Foundation
import GRDB
import Testing
import ValiseTestSupport
@testable import ValiseStore

/// The TTL class a sender asked for is kept beside the one the relay applied and delivered
/// with the envelope (its sealed contents bind the sender's class); expiry runs on the
/// applied one. Prekeys stored before envelope keys were X-Wing keys are dropped on upgrade.
@Suite("Queue: the TTL class asked for, and the X-Wing envelope key upgrade")
struct QueueRequestedTTLTests {
    let file = QueueFile()

    @Test("an envelope keeps the class its sender asked for (DEFAULT included) while it expires on the class applied", arguments: StoreKind.allCases)
    func requestedKept(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let asked = [
            IncomingEnvelope(mailbox: Mailbox("bob"), id: messageID(1), precedence: .routine, ttl: .week, requestedTTL: 4, body: bodyBytes(1)),
            IncomingEnvelope(mailbox: Mailbox("bob"), id: messageID(2), precedence: .routine, ttl: .week, requestedTTL: 0, body: bodyBytes(2)),
            IncomingEnvelope(mailbox: Mailbox("bob"), id: messageID(3), precedence: .routine, ttl: .hour, body: bodyBytes(3)),
        ]
        _ = try store.accept(asked, now: queueEpoch)
        let queued = try store.queued("bob")
        #expect(queued.map(\.requestedTTL) == [4, 0, 1])
        #expect(queued.map { $0.expiresAt - $0.arrivedAt } == [TTLClass.week.seconds, TTLClass.week.seconds, TTLClass.hour.seconds])
        // What a connection already delivering the mailbox is handed carries it too.
        #expect(StoredEnvelope(accepted: asked[0], expiresAt: queueEpoch + TTLClass.week.seconds).requestedTTL == 4)
        _ = try store.expire(now: queueEpoch + TTLClass.week.seconds)
        #expect(try store.queued("bob", now: queueEpoch + TTLClass.week.seconds).isEmpty)
    }

    /// SQLite only: a file written by an earlier version (PostgreSQL's schema starts at this version).
    @Test("a queue from before: its envelopes read as asked 0, and X25519 envelope keys (32 bytes) are dropped, X-Wing ones kept")
    func upgrade() throws {
        let pool = try file.earlier(upTo: "message-reason")
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO envelope (mailbox, id, precedence, arrived_at, expires_at, size, body) VALUES ('bob', ?, 0, ?, ?, 3, ?)",
                arguments: [Data(messageID(1).bytes), Int64(queueEpoch), Int64(queueEpoch + 3600), Data([1, 2, 3])])
            for (mailbox, length) in [("old", 32), ("new", StoredPrekeys.envelopeKeyByteCount)] {
                try db.execute(
                    sql: "INSERT INTO prekey VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [mailbox, Data(count: 32), Data(count: 64), Data(count: length), Data(count: 64), Int64(queueEpoch)])
            }
        }
        try pool.close()

        let store = try file.open()
        #expect(try store.queued("bob").map(\.requestedTTL) == [0])
        let bundles = try store.takeBundles([Mailbox("old"), Mailbox("new")], takeOneTimePrekey: nil)
        #expect(bundles[0] == nil)
        #expect(bundles[1]?.prekeys.envelopeKey.count == StoredPrekeys.envelopeKeyByteCount)
    }
}
