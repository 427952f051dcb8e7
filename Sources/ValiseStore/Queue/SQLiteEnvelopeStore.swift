import Foundation
import GRDB

/// The embedded envelope store: one SQLite file in WAL mode through GRDB, every commit
/// durable (`synchronous = FULL`: the WAL is fsynced before a commit returns). Writes are
/// meant to be funnelled through one thread in batches (group commit); reads run
/// concurrently with them (WAL readers).
public final class SQLiteEnvelopeStore: EnvelopeStore {
    private let pool: DatabasePool
    public let limits: QueueLimits
    public let path: String

    /// Opens (creating if needed) the store at `path`. `maximumBytes` caps the file's size
    /// (SQLite's max_page_count): past it, new envelopes are refused as storage full.
    public init(path: String, limits: QueueLimits = QueueLimits(), maximumBytes: Int? = nil) throws(StoreError) {
        self.path = path
        self.limits = limits
        var configuration = Configuration()
        configuration.label = "valise.queue"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            if let maximumBytes {
                let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                try db.execute(sql: "PRAGMA max_page_count = \(max(16, maximumBytes / pageSize))")
            }
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw Self.storeError(error, doing: "open \(path)")
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
        return migrator
    }

    public func accept(_ envelopes: [IncomingEnvelope], now: UInt64) throws(StoreError) -> [AcceptOutcome] {
        let limits = self.limits
        do {
            return try pool.write { db -> [AcceptOutcome] in
                var outcomes: [AcceptOutcome] = []
                outcomes.reserveCapacity(envelopes.count)
                for envelope in envelopes {
                    let id = envelope.id.bytes.databaseBlob
                    if let row = try Row.fetchOne(db, sql: "SELECT mailbox, expires_at FROM message WHERE id = ?", arguments: [id]) {
                        let mailbox: String = row["mailbox"]
                        outcomes.append(mailbox == envelope.mailbox.name
                            ? .accepted(expiresAt: UInt64(row["expires_at"] as Int64), duplicate: true)
                            : .refused(.idInUse))
                        continue
                    }
                    let usage = try Row.fetchOne(db, sql: "SELECT count, bytes FROM mailbox_usage WHERE mailbox = ?", arguments: [envelope.mailbox.name])
                    let count: Int = usage?["count"] ?? 0
                    let bytes: Int = usage?["bytes"] ?? 0
                    guard count + 1 <= limits.maximumMessagesPerMailbox, bytes + envelope.body.count <= limits.maximumBytesPerMailbox else {
                        outcomes.append(.refused(.mailboxFull))
                        continue
                    }
                    let expires = now + envelope.ttl.seconds
                    try db.execute(
                        sql: "INSERT INTO envelope (mailbox, id, precedence, arrived_at, expires_at, size, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        arguments: [envelope.mailbox.name, id, envelope.precedence.rawValue, Int64(now), Int64(expires), envelope.body.count, envelope.body.databaseBlob])
                    try db.execute(
                        sql: "INSERT INTO message (id, mailbox, state, since, expires_at, forget_at) VALUES (?, ?, ?, ?, ?, ?)",
                        arguments: [id, envelope.mailbox.name, MessageState.pending.rawValue, Int64(now), Int64(expires), Int64(expires + limits.retentionSeconds)])
                    try db.execute(
                        sql: """
                            INSERT INTO mailbox_usage (mailbox, count, bytes) VALUES (?, 1, ?)
                            ON CONFLICT(mailbox) DO UPDATE SET count = count + 1, bytes = bytes + excluded.bytes
                            """,
                        arguments: [envelope.mailbox.name, envelope.body.count])
                    outcomes.append(.accepted(expiresAt: expires, duplicate: false))
                }
                return outcomes
            }
        } catch {
            let failure = Self.storeError(error, doing: "store envelopes")
            if failure.kind == .storageFull { return envelopes.map { _ in .refused(.storageFull) } }
            throw failure
        }
    }

    public func nextForDelivery(mailbox: Mailbox, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [StoredEnvelope] {
        guard limit > 0 else { return [] }
        do {
            return try pool.read { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT sequence, id, precedence, arrived_at, expires_at, body FROM envelope
                        WHERE mailbox = ? AND expires_at > ?
                        ORDER BY precedence DESC, sequence LIMIT ?
                        """,
                    arguments: [mailbox.name, Int64(now), limit + excluding.count])
                var result: [StoredEnvelope] = []
                for row in rows {
                    guard let id = MessageID(bytes: [UInt8](row["id"] as Data)), !excluding.contains(id) else { continue }
                    result.append(StoredEnvelope(
                        sequence: row["sequence"], mailbox: mailbox, id: id,
                        precedence: Precedence(rawValue: row["precedence"]) ?? .routine,
                        arrivedAt: UInt64(row["arrived_at"] as Int64), expiresAt: UInt64(row["expires_at"] as Int64),
                        body: [UInt8](row["body"] as Data)))
                    if result.count == limit { break }
                }
                return result
            }
        } catch {
            throw Self.storeError(error, doing: "read envelopes")
        }
    }

    public func acknowledge(mailbox: Mailbox, ids: [MessageID], now: UInt64) throws(StoreError) -> Int {
        guard !ids.isEmpty else { return 0 }
        do {
            return try pool.write { db in
                var deleted = 0
                var freed = 0
                for id in ids {
                    guard let size = try Int.fetchOne(
                        db, sql: "DELETE FROM envelope WHERE id = ? AND mailbox = ? RETURNING size",
                        arguments: [id.bytes.databaseBlob, mailbox.name]) else { continue }
                    deleted += 1
                    freed += size
                    try db.execute(
                        sql: "UPDATE message SET state = ?, since = ? WHERE id = ?",
                        arguments: [MessageState.delivered.rawValue, Int64(now), id.bytes.databaseBlob])
                }
                if deleted > 0 {
                    try db.execute(
                        sql: "UPDATE mailbox_usage SET count = count - ?, bytes = bytes - ? WHERE mailbox = ?",
                        arguments: [deleted, freed, mailbox.name])
                }
                return deleted
            }
        } catch {
            throw Self.storeError(error, doing: "record acknowledgements")
        }
    }

    public func expire(now: UInt64) throws(StoreError) -> Int {
        do {
            return try pool.write { db in
                let expired = try Row.fetchAll(
                    db, sql: "DELETE FROM envelope WHERE expires_at <= ? RETURNING id, mailbox, size", arguments: [Int64(now)])
                var freed: [String: (count: Int, bytes: Int)] = [:]
                for row in expired {
                    let mailbox: String = row["mailbox"]
                    freed[mailbox, default: (0, 0)].count += 1
                    freed[mailbox, default: (0, 0)].bytes += row["size"] as Int
                    try db.execute(
                        sql: "UPDATE message SET state = ?, since = ? WHERE id = ?",
                        arguments: [MessageState.expiredUndelivered.rawValue, Int64(now), row["id"] as Data])
                }
                for (mailbox, amount) in freed {
                    try db.execute(
                        sql: "UPDATE mailbox_usage SET count = count - ?, bytes = bytes - ? WHERE mailbox = ?",
                        arguments: [amount.count, amount.bytes, mailbox])
                }
                try db.execute(sql: "DELETE FROM message WHERE forget_at <= ?", arguments: [Int64(now)])
                try db.execute(sql: "DELETE FROM mailbox_usage WHERE count <= 0")
                return expired.count
            }
        } catch {
            throw Self.storeError(error, doing: "expire envelopes")
        }
    }

    public func purge(mailbox: Mailbox, now: UInt64) throws(StoreError) -> Int {
        do {
            return try pool.write { db in
                try db.execute(
                    sql: "UPDATE message SET state = ?, since = ? WHERE mailbox = ? AND state = ?",
                    arguments: [MessageState.purged.rawValue, Int64(now), mailbox.name, MessageState.pending.rawValue])
                try db.execute(sql: "DELETE FROM envelope WHERE mailbox = ?", arguments: [mailbox.name])
                let purged = db.changesCount
                try db.execute(sql: "DELETE FROM mailbox_usage WHERE mailbox = ?", arguments: [mailbox.name])
                return purged
            }
        } catch {
            throw Self.storeError(error, doing: "purge a mailbox")
        }
    }

    public func states(of ids: [MessageID]) throws(StoreError) -> [MessageID: (state: MessageState, since: UInt64)] {
        guard !ids.isEmpty else { return [:] }
        do {
            return try pool.read { db in
                var result: [MessageID: (state: MessageState, since: UInt64)] = [:]
                for id in ids {
                    guard let row = try Row.fetchOne(db, sql: "SELECT state, since FROM message WHERE id = ?", arguments: [id.bytes.databaseBlob]),
                          let state = MessageState(rawValue: row["state"]) else { continue }
                    result[id] = (state, UInt64(row["since"] as Int64))
                }
                return result
            }
        } catch {
            throw Self.storeError(error, doing: "read message states")
        }
    }

    public func statistics(now: UInt64) throws(StoreError) -> QueueStatistics {
        do {
            return try pool.read { db in
                var statistics = QueueStatistics()
                var oldest: Int64?
                for row in try Row.fetchAll(db, sql: "SELECT precedence, COUNT(*) AS n, SUM(size) AS bytes, MIN(arrived_at) AS oldest FROM envelope GROUP BY precedence") {
                    guard let precedence = Precedence(rawValue: row["precedence"]) else { continue }
                    statistics.countByPrecedence[precedence] = row["n"]
                    statistics.bytes += row["bytes"] as Int
                    let arrived: Int64 = row["oldest"]
                    oldest = min(oldest ?? arrived, arrived)
                }
                if let oldest { statistics.oldestAge = now > UInt64(oldest) ? now - UInt64(oldest) : 0 }
                statistics.mailboxes = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM mailbox_usage WHERE count > 0") ?? 0
                for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM message GROUP BY state") {
                    if let state = MessageState(rawValue: row["state"]) { statistics.remembered[state] = row["n"] }
                }
                return statistics
            }
        } catch {
            throw Self.storeError(error, doing: "read statistics")
        }
    }

    /// SQLite's own consistency check (`PRAGMA integrity_check`): "ok" or the problems.
    public func integrityCheck() throws(StoreError) -> String {
        do {
            return try pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
        } catch {
            throw Self.storeError(error, doing: "check integrity")
        }
    }

    static func storeError(_ error: any Error, doing what: String) -> StoreError {
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_FULL:
                return StoreError(.storageFull, "cannot \(what): the store is full (disk or configured size)")
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                return StoreError(.corrupt, "cannot \(what): the store is damaged (\(error.message ?? "corrupt")); restore it from a backup")
            default:
                return StoreError(.failure, "cannot \(what): \(error.message ?? "\(error.resultCode)")")
            }
        }
        return StoreError(.failure, "cannot \(what): \(error)")
    }
}

extension [UInt8] {
    /// Bytes as an SQLite BLOB.
    var databaseBlob: Data { Data(self) }
}
