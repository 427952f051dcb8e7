import Foundation
import GRDB

/// The embedded envelope store: one SQLite file in WAL mode through GRDB, every commit
/// durable (`synchronous = FULL`: the WAL is fsynced before a commit returns). Writes are
/// meant to be funnelled through one thread in batches (group commit); reads run
/// concurrently with them (WAL readers).
public final class SQLiteEnvelopeStore: EnvelopeStore {
    let pool: DatabasePool
    public let limits: QueueLimits
    public let path: String
    public let durability: Durability
    let reserve: SpaceReserve

    /// `PRAGMA application_id` "VALQ": bytes 68–71 of the file header say whose file it is
    /// before anything is opened for writing.
    static let fileKind = SQLiteFile.Kind(applicationID: 0x5641_4C51, name: "a Valise queue", program: "valised")

    /// Opens the store at `path`, creating it first when `create` is set and no file is
    /// there. An existing file must be a Valise queue this version understands (SQLite, WAL,
    /// the Valise application id, no migration it does not know); anything else is refused
    /// before a byte of it changes. `maximumBytes` caps the file's size (SQLite's
    /// max_page_count): past it, new envelopes are refused as storage full.
    /// `reserveBytes` are kept allocated in `path-reserve` and given back when the disk is
    /// full, so that acknowledgements, expiry and purges still go through (0: no reserve).
    /// `durability` says when a commit counts as done: `.full` (the default) once the log is
    /// on the disk, `.os` once the operating system has it (see `Durability`).
    public init(
        path: String, limits: QueueLimits = QueueLimits(), maximumBytes: Int? = nil,
        reserveBytes: Int = SQLiteEnvelopeStore.defaultReserveBytes, create: Bool = true, durability: Durability = .full
    ) throws(StoreError) {
        self.path = path
        self.limits = limits
        self.durability = durability
        try SQLiteFile.prepare(path, kind: Self.fileKind, migrator: Self.migrator, create: create)
        var configuration = Configuration()
        configuration.label = "valise.queue"
        // A checkpoint that must empty the log waits for readers (deliveries, `valised
        // status`) to finish instead of failing at once.
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // Deleted envelopes are overwritten, not left in free pages for a seized disk
            // to give up (said explicitly: SQLite's own default is off).
            try db.execute(sql: "PRAGMA secure_delete = ON")
            // The log is folded into the database every 1000 pages (4 MiB); with a group
            // commit of at most 4 MiB, the 8 MiB space reserve always covers one fold.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 1000")
            // After a burst, the log file is cut back to 64 MiB at the next checkpoint.
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            if let maximumBytes {
                let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                try db.execute(sql: "PRAGMA max_page_count = \(max(16, maximumBytes / pageSize))")
            }
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw Self.storeError(error, doing: "open \(path)")
        }
        do {
            // GRDB puts a pool's connections in synchronous=NORMAL once WAL is on (after
            // prepareDatabase), which fsyncs only at checkpoints: a commit could be lost to
            // a power cut after Accepted. Every write goes through the one writer
            // connection, so FULL there makes every commit durable before it returns —
            // unless the operator chose `.os`, which is exactly NORMAL.
            let level = durability.synchronousLevel
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = \(level)")
                guard try Int.fetchOne(db, sql: "PRAGMA synchronous") == level else {
                    throw StoreError(.failure, "cannot open \(path): SQLite refused synchronous=\(level)")
                }
            }
            try Self.migrator.migrate(pool)
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.storeError(error, doing: "open \(path)")
        }
        reserve = SpaceReserve(path: path + "-reserve", bytes: reserveBytes)
    }

    public static let defaultReserveBytes = 8 << 20

    func reclaimFreePagesForTests() { reclaimFreePages() }

    /// A PRAGMA's value on the writer connection (`synchronous`: 2 is FULL), for tests.
    func writerPragma(_ name: String) throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA \(name)") ?? -1 }
    }

    /// Whether the space reserve is whole. While it is not, new envelopes are refused as
    /// storage full.
    public var spaceReserveHeld: Bool { reserve.isHeld }

    /// Gives the store's free pages (left by deletions) back to the file system, and empties
    /// the write-ahead log, so that the space reserve can be allocated again. Best effort:
    /// a failure leaves the store as it was.
    func reclaimFreePages() {
        try? pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA incremental_vacuum")
            try db.checkpoint(.truncate)
        }
    }

    /// Runs a deletion; if the disk is full, gives the reserve back, folds the log into the
    /// database (the room it needs is what the reserve kept), and tries once more without
    /// overwriting the freed pages (which would write them all to the log again): those
    /// are overwritten when they are reused.
    func freeingSpace<T>(_ operation: () throws(StoreError) -> T) throws(StoreError) -> T {
        do {
            return try operation()
        } catch where error.kind == .storageFull && reserve.release() {
            try? pool.writeWithoutTransaction { db in
                try db.checkpoint(.truncate)
                try db.execute(sql: "PRAGMA secure_delete = FAST")
            }
            defer { try? pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA secure_delete = ON") } }
            return try operation()
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // Envelopes waiting for delivery. No column names the sender: the relay never
            // stores who sent a message.
            try db.execute(sql: """
                CREATE TABLE envelope (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    mailbox TEXT NOT NULL,
                    id BLOB NOT NULL UNIQUE,
                    precedence INTEGER NOT NULL,
                    arrived_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    size INTEGER NOT NULL,
                    body BLOB NOT NULL
                );
                CREATE INDEX envelope_delivery ON envelope(mailbox, precedence DESC, sequence);
                CREATE INDEX envelope_expiry ON envelope(expires_at);
                -- Every accepted id, for dedup and status, until forget_at.
                CREATE TABLE message (
                    id BLOB PRIMARY KEY,
                    mailbox TEXT NOT NULL,
                    state INTEGER NOT NULL,
                    since INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    forget_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX message_forget ON message(forget_at);
                -- Per-mailbox totals for quotas, kept in step with envelope.
                CREATE TABLE mailbox_usage (
                    mailbox TEXT PRIMARY KEY,
                    count INTEGER NOT NULL,
                    bytes INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        registerPrekeyMigration(&migrator)
        migrator.registerMigration("message-reason") { db in
            // Why an id is undeliverable (`UndeliverableReason`); 0 in every other state.
            // Before this, state 4 ("purged") came only from revocations.
            try db.execute(sql: """
                ALTER TABLE message ADD COLUMN reason INTEGER NOT NULL DEFAULT 0;
                UPDATE message SET reason = \(UndeliverableReason.recipientRevoked.rawValue) WHERE state = \(MessageState.undeliverable.rawValue);
                """)
        }
        registerXWingEnvelopeKeyMigration(&migrator)
        migrator.registerMigration("envelope-requested-ttl") { db in
            // The TTL class the sender asked for (the relay protocol's number, 0 DEFAULT to 4
            // MONTH), delivered with the envelope: its sealed contents bind it. Envelopes
            // queued before have 0, and no current device opens them anyway.
            try db.execute(sql: "ALTER TABLE envelope ADD COLUMN requested_ttl INTEGER NOT NULL DEFAULT 0")
        }
        return migrator
    }

    public func accept(_ envelopes: [IncomingEnvelope], now: UInt64) throws(StoreError) -> [AcceptOutcome] {
        // The room kept for deletions is not for new envelopes.
        guard reserve.ensure(reclaim: reclaimFreePages) else { return envelopes.map { _ in .refused(.storageFull) } }
        do {
            return try pool.write { db in try insert(envelopes, now: now, in: db) }
        } catch {
            let failure = Self.storeError(error, doing: "store envelopes in \(path)")
            if failure.kind == .storageFull { return envelopes.map { _ in .refused(.storageFull) } }
            throw failure
        }
    }

    /// Stores envelopes and records acknowledgements in one transaction: a relay that is
    /// both taking and delivering pays one fsync for both. If that fails (a full disk, say),
    /// nothing of it happened and each goes again on its own, so that the acknowledgements
    /// (which free room) are not held back by the envelopes.
    public func commit(
        accepting envelopes: [IncomingEnvelope], acknowledging requests: [AcknowledgeRequest], now: UInt64
    ) -> (accepted: Result<[AcceptOutcome], StoreError>, acknowledged: Result<[Int], StoreError>) {
        let separately = { () -> (accepted: Result<[AcceptOutcome], StoreError>, acknowledged: Result<[Int], StoreError>) in
            (Result { () throws(StoreError) in try self.accept(envelopes, now: now) },
             Result { () throws(StoreError) in try self.acknowledge(requests, now: now) })
        }
        guard !envelopes.isEmpty, requests.contains(where: { !$0.ids.isEmpty }), reserve.ensure(reclaim: reclaimFreePages) else {
            return separately()
        }
        do {
            let (outcomes, deleted) = try pool.write { db in (try insert(envelopes, now: now, in: db), try Self.delete(requests, now: now, in: db)) }
            return (.success(outcomes), .success(deleted))
        } catch {
            return separately()
        }
    }

    /// The envelopes' rows, in a write transaction: dedup by id, quotas, then the envelope,
    /// its remembered id, and the mailbox's totals.
    func insert(_ envelopes: [IncomingEnvelope], now: UInt64, in db: Database) throws -> [AcceptOutcome] {
        // Prepared once per connection and reused (GRDB's statement cache): compiling
        // SQL for every envelope cost more than executing it. Bound through SQLite's C
        // API (`BoundStatement`): GRDB's argument boxing cost as much again.
        let findMessage = BoundStatement(try db.cachedStatement(sql: "SELECT mailbox, expires_at FROM message WHERE id = ?"), in: db)
        let readUsage = BoundStatement(try db.cachedStatement(sql: "SELECT count, bytes FROM mailbox_usage WHERE mailbox = ?"), in: db)
        let insertEnvelope = BoundStatement(try db.cachedStatement(
            sql: "INSERT INTO envelope (mailbox, id, precedence, arrived_at, expires_at, size, body, requested_ttl) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"), in: db)
        let insertMessage = BoundStatement(try db.cachedStatement(
            sql: "INSERT INTO message (id, mailbox, state, since, expires_at, forget_at) VALUES (?, ?, ?, ?, ?, ?)"), in: db)
        // Each mailbox's totals are read once per batch and written back once.
        var usage: [String: MailboxUsage] = [:]
        var outcomes: [AcceptOutcome] = []
        outcomes.reserveCapacity(envelopes.count)
        for envelope in envelopes {
            let id = envelope.id.bytes
            let mailbox = envelope.mailbox.name
            findMessage.bind(1, id)
            let known = try findMessage.firstRow { (mailbox: $0.text(0), expiresAt: $0.int64(1)) }
            if let known {
                outcomes.append(known.mailbox == mailbox
                    ? .accepted(expiresAt: UInt64(known.expiresAt), duplicate: true)
                    : .refused(.idInUse))
                continue
            }
            var totals: MailboxUsage
            if let cached = usage[mailbox] {
                totals = cached
            } else {
                readUsage.bind(1, mailbox)
                totals = try readUsage.firstRow { MailboxUsage(count: Int($0.int64(0)), bytes: Int($0.int64(1))) }
                    ?? MailboxUsage(count: 0, bytes: 0)
            }
            guard totals.count + 1 <= limits.maximumMessagesPerMailbox, totals.bytes + envelope.body.count <= limits.maximumBytesPerMailbox else {
                outcomes.append(.refused(.mailboxFull))
                continue
            }
            let expires = now + envelope.ttl.seconds
            insertEnvelope.bind(1, mailbox)
            insertEnvelope.bind(2, id)
            insertEnvelope.bind(3, Int64(envelope.precedence.rawValue))
            insertEnvelope.bind(4, Int64(now))
            insertEnvelope.bind(5, Int64(expires))
            insertEnvelope.bind(6, Int64(envelope.body.count))
            insertEnvelope.bind(7, envelope.body)
            insertEnvelope.bind(8, Int64(envelope.requestedTTL))
            try insertEnvelope.run()
            insertMessage.bind(1, id)
            insertMessage.bind(2, mailbox)
            insertMessage.bind(3, Int64(MessageState.pending.rawValue))
            insertMessage.bind(4, Int64(now))
            insertMessage.bind(5, Int64(expires))
            insertMessage.bind(6, Int64(expires + limits.retentionSeconds))
            try insertMessage.run()
            totals.count += 1
            totals.bytes += envelope.body.count
            totals.added += 1
            totals.addedBytes += envelope.body.count
            usage[mailbox] = totals
            outcomes.append(.accepted(expiresAt: expires, duplicate: false))
        }
        let addUsage = try db.cachedStatement(sql: """
            INSERT INTO mailbox_usage (mailbox, count, bytes) VALUES (?, ?, ?)
            ON CONFLICT(mailbox) DO UPDATE SET count = count + excluded.count, bytes = bytes + excluded.bytes
            """)
        for (mailbox, totals) in usage where totals.added > 0 {
            try addUsage.execute(arguments: [mailbox, totals.added, totals.addedBytes])
        }
        return outcomes
    }

    /// Acknowledged envelopes deleted and remembered as delivered, in a write transaction.
    static func delete(_ requests: [AcknowledgeRequest], now: UInt64, in db: Database) throws -> [Int] {
        let deleteEnvelope = BoundStatement(try db.cachedStatement(sql: "DELETE FROM envelope WHERE id = ? AND mailbox = ? RETURNING size"), in: db)
        let markDelivered = BoundStatement(try db.cachedStatement(sql: "UPDATE message SET state = ?, since = ? WHERE id = ?"), in: db)
        let markExpiredDelivered = try db.cachedStatement(
            sql: "UPDATE message SET state = ?, since = ? WHERE id = ? AND mailbox = ? AND state = ?")
        var deletedPerRequest: [Int] = []
        var freed: [String: (count: Int, bytes: Int)] = [:]
        for request in requests {
            var deleted = 0
            for id in request.ids {
                deleteEnvelope.bind(1, id.bytes)
                deleteEnvelope.bind(2, request.mailbox.name)
                let size = try deleteEnvelope.firstRow { Int($0.int64(0)) }
                guard let size else {
                    // Delivered just before its expiry and swept before the ack came:
                    // the recipient has it, so the status must not say undelivered.
                    try markExpiredDelivered.execute(arguments: [
                        MessageState.delivered.rawValue, Int64(now), id.bytes.databaseBlob,
                        request.mailbox.name, MessageState.expiredUndelivered.rawValue])
                    continue
                }
                deleted += 1
                freed[request.mailbox.name, default: (0, 0)].count += 1
                freed[request.mailbox.name, default: (0, 0)].bytes += size
                markDelivered.bind(1, Int64(MessageState.delivered.rawValue))
                markDelivered.bind(2, Int64(now))
                markDelivered.bind(3, id.bytes)
                try markDelivered.run()
            }
            deletedPerRequest.append(deleted)
        }
        let releaseUsage = try db.cachedStatement(sql: "UPDATE mailbox_usage SET count = count - ?, bytes = bytes - ? WHERE mailbox = ?")
        for (mailbox, usage) in freed {
            try releaseUsage.execute(arguments: [usage.count, usage.bytes, mailbox])
        }
        return deletedPerRequest
    }

    public func nextForDelivery(mailbox: Mailbox, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [StoredEnvelope] {
        guard limit > 0 else { return [] }
        do {
            return try pool.read { db in
                let rows = try Row.fetchAll(
                    db.cachedStatement(sql: """
                        SELECT sequence, id, precedence, arrived_at, expires_at, body, requested_ttl FROM envelope
                        WHERE mailbox = ? AND expires_at > ?
                        ORDER BY precedence DESC, sequence LIMIT ?
                        """),
                    arguments: [mailbox.name, Int64(now), limit + excluding.count])
                var result: [StoredEnvelope] = []
                for row in rows {
                    guard let id = MessageID(bytes: [UInt8](row["id"] as Data)), !excluding.contains(id) else { continue }
                    result.append(StoredEnvelope(
                        sequence: row["sequence"], mailbox: mailbox, id: id,
                        precedence: Precedence(rawValue: row["precedence"]) ?? .routine,
                        arrivedAt: UInt64(row["arrived_at"] as Int64), expiresAt: UInt64(row["expires_at"] as Int64),
                        body: [UInt8](row["body"] as Data), requestedTTL: UInt8(clamping: row["requested_ttl"] as Int64)))
                    if result.count == limit { break }
                }
                return result
            }
        } catch {
            throw Self.storeError(error, doing: "read envelopes in \(path)")
        }
    }

    public func acknowledge(_ requests: [AcknowledgeRequest], now: UInt64) throws(StoreError) -> [Int] {
        guard requests.contains(where: { !$0.ids.isEmpty }) else { return requests.map { _ in 0 } }
        return try freeingSpace { () throws(StoreError) in try recordAcknowledgements(requests, now: now) }
    }

    func recordAcknowledgements(_ requests: [AcknowledgeRequest], now: UInt64) throws(StoreError) -> [Int] {
        do {
            return try pool.write { db in try Self.delete(requests, now: now, in: db) }
        } catch {
            throw Self.storeError(error, doing: "record acknowledgements in \(path)")
        }
    }

    static func storeError(_ error: any Error, doing what: String) -> StoreError { SQLiteFile.storeError(error, doing: what) }
}

/// When the relay counts an envelope as stored, and so answers `Accepted`.
public enum Durability: String, Sendable, CaseIterable {
    /// Once the write-ahead log is on the disk (SQLite `synchronous=FULL`, an fsync per
    /// group commit): an accepted envelope survives a crash of the process, of the
    /// operating system, and a power cut. The default.
    case full
    /// Once the operating system has the write (`synchronous=NORMAL` in WAL mode: the log
    /// is fsynced only at checkpoints). Survives a crash of the relay process, not a crash
    /// of the operating system or a power cut: envelopes accepted in the last moments
    /// before one can be lost, breaking the delivery contract. For sites that choose
    /// throughput over that guarantee, knowingly (config/valised.yaml says so too).
    case os

    /// SQLite's `PRAGMA synchronous` value.
    var synchronousLevel: Int { self == .full ? 2 : 1 }
}

/// A mailbox's totals while a batch is accepted, and what the batch added to them.
private struct MailboxUsage {
    var count: Int
    var bytes: Int
    var added = 0
    var addedBytes = 0
}

extension [UInt8] {
    /// Bytes as an SQLite BLOB.
    var databaseBlob: Data { Data(self) }
}
