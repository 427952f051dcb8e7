import Foundation
// Only to build foreign SQLite files for the recovery tests.
import GRDB
import Testing
import ValiseTestSupport
@testable import ValiseStore

/// SQLite only, except `reopen` (what a restart, or another PostgreSQL node, sees is the
/// contract): the rest is about SQLite's file itself (fsync settings, auto-vacuum, WAL, foreign
/// and newer files), which PostgreSQL answers for on its own.
@Suite("Queue: durability and recovery")
struct QueueDurabilityTests {
    let file = QueueFile()

    @Test("after closing and reopening, everything accepted is there in the same order, and arrival order continues", arguments: StoreKind.allCases)
    func reopen(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let later = queueEpoch + 2 * 3600
        var snapshot: (queues: [[StoredEnvelope]], statistics: QueueStatistics, states: [MessageID: MessageState], since: [MessageID: UInt64])
        let ids = (1...30).map { messageID($0) }
        do {
            let store = try queue.open()
            var generator = SplitMix64(seed: 42)
            for n in 1...30 {
                let precedence = Precedence(rawValue: generator.int(in: 0...3))!
                let ttl: TTLClass = n % 7 == 0 ? .hour : .week
                _ = try store.accept([envelope(["a", "b", "c"][n % 3], n, precedence, ttl: ttl, body: generator.bytes(generator.int(in: 0...300)))],
                                     now: queueEpoch + UInt64(n))
            }
            _ = try store.acknowledge(mailbox: Mailbox("a"), ids: [messageID(3), messageID(6)], now: queueEpoch + 100)
            _ = try store.purge(mailbox: Mailbox("c"), now: queueEpoch + 200)
            #expect(try store.expire(now: later) == 3)
            snapshot = (try ["a", "b", "c"].map { try store.queued($0, now: later) }, try store.statistics(now: later),
                        try store.states(of: ids).mapValues(\.state), try store.states(of: ids).mapValues(\.since))
            #expect(snapshot.queues.map(\.count) == [7, 8, 0])
        }

        let reopened = try queue.open()
        #expect(try ["a", "b", "c"].map { try reopened.queued($0, now: later) } == snapshot.queues)
        #expect(try reopened.statistics(now: later) == snapshot.statistics)
        #expect(try reopened.states(of: ids).mapValues(\.state) == snapshot.states)
        #expect(try reopened.states(of: ids).mapValues(\.since) == snapshot.since)
        #expect(try queue.integrityCheck(reopened) == "ok")

        // A ROUTINE envelope accepted after the restart goes after every earlier ROUTINE one,
        // and dedup still knows the old ids.
        _ = try reopened.accept([envelope("a", 100, .routine)], now: later)
        let a = try reopened.queued("a", now: later)
        #expect(a.last?.id == messageID(100))
        #expect(a.dropLast().allSatisfy { $0.sequence < a.last!.sequence })
        #expect(try reopened.accept([envelope("b", 1)], now: later)
            == [.accepted(expiresAt: queueEpoch + 1 + TTLClass.week.seconds, duplicate: true)])
        #expect(try reopened.accept([envelope("c", 3)], now: later) == [.refused(.idInUse)])
    }

    @Test("every commit is fsynced before it returns: the writer runs with synchronous=FULL, which GRDB's pool would lower")
    func synchronousFull() throws {
        let store = try file.open()
        #expect(try store.writerPragma("synchronous") == 2)
        _ = try store.accept([envelope("a", 1)], now: queueEpoch)
        #expect(try store.writerPragma("synchronous") == 2, "still FULL after a commit")
    }

    @Test("durability 'os' is synchronous=NORMAL on the writer, and only when asked for; reopening with full restores FULL")
    func relaxedDurability() throws {
        let relaxed = try file.open(durability: .os)
        #expect(relaxed.durability == .os)
        #expect(try relaxed.writerPragma("synchronous") == 1)
        _ = try relaxed.accept([envelope("a", 1)], now: queueEpoch)
        #expect(try relaxed.writerPragma("synchronous") == 1, "still NORMAL after a commit")
        #expect(try relaxed.queued("a", now: queueEpoch).count == 1)
        let strict = try file.open()
        #expect(try strict.writerPragma("synchronous") == 2)
        #expect(try strict.queued("a", now: queueEpoch).count == 1, "what the relaxed store committed is there")
    }

    @Test("a new store has incremental auto-vacuum (so a full disk can get freed pages back) and secure delete")
    func vacuumAndSecureDelete() throws {
        let store = try file.open()
        #expect(try store.writerPragma("auto_vacuum") == 2)
        #expect(try store.writerPragma("secure_delete") == 1)
        _ = try store.accept((1...40).map { envelope("a", $0, body: [UInt8](repeating: 7, count: 8000)) }, now: queueEpoch)
        _ = try store.acknowledge(mailbox: Mailbox("a"), ids: (1...40).map { messageID($0) }, now: queueEpoch + 1)
        let before = try store.writerPragma("page_count")
        store.reclaimFreePagesForTests()
        #expect(try store.writerPragma("page_count") < before, "incremental vacuum gave no page back")
    }

    @Test("the store file is in WAL mode and passes SQLite's integrity check")
    func walAndIntegrity() throws {
        let store = try file.open()
        _ = try store.accept((1...20).map { envelope("a", $0) }, now: queueEpoch)
        #expect(try store.integrityCheck() == "ok")
        // Bytes 18 and 19 of an SQLite header are the write and read versions: 2 means WAL.
        let header = try #require(FileManager.default.contents(atPath: file.path))
        #expect(header.prefix(16) == Data("SQLite format 3\0".utf8))
        #expect(header[18] == 2 && header[19] == 2)
    }

    enum Foreign: String, CaseIterable, CustomTestStringConvertible {
        case randomBytes, emptyFile, otherTables, newerSchema
        var testDescription: String { rawValue }
    }

    @Test("a file that is not a Valise queue is refused with a clear error and left unchanged", arguments: Foreign.allCases)
    func foreignFile(kind: Foreign) throws {
        let path = file.path
        switch kind {
        case .randomBytes:
            var generator = SplitMix64(seed: 5)
            #expect(FileManager.default.createFile(atPath: path, contents: Data(generator.bytes(8192))))
        case .emptyFile:
            #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        case .otherTables:
            let database = try DatabaseQueue(path: path)
            try database.write { db in
                try db.execute(sql: "CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
                try db.execute(sql: "INSERT INTO note (text) VALUES ('the ambassador''s diary')")
            }
            try database.close()
        case .newerSchema:
            // A queue written by a later version: one more migration, one more column.
            _ = try SQLiteEnvelopeStore(path: path)
            let database = try DatabaseQueue(path: path)
            try database.write { db in
                try db.execute(sql: "ALTER TABLE envelope ADD COLUMN route BLOB")
                try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v2')")
            }
            try database.close()
        }
        let before = try #require(FileManager.default.contents(atPath: path))

        var failure: StoreError?
        do {
            _ = try SQLiteEnvelopeStore(path: path)
        } catch {
            failure = error
        }
        let after = try #require(FileManager.default.contents(atPath: path))

        #expect(failure != nil, "opening \(kind) must fail")
        // Compared as a Bool: a failure must not print kilobytes of diff.
        #expect(after == before, "opening \(kind) must not modify the file (\(before.count) bytes before, \(after.count) after)")
        if let failure {
            // The message names the file, so an operator knows which one to look at.
            #expect(failure.message.contains(path))
            #expect(failure.kind != .storageFull)
        }
    }
}
