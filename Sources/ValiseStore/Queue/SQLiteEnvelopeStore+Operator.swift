import Foundation
import GRDB

/// The operator's view of the queue and actions on it (`OperatorQueue`).
extension SQLiteEnvelopeStore: OperatorQueue {
    static func registerHoldMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("envelope-held") { db in
            // 1 while an operator holds the envelope back: neither delivered nor forwarded;
            // it still expires.
            try db.execute(sql: """
                ALTER TABLE envelope ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE forward ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
                """)
        }
    }

    /// Both queues' rows in one shape: the forwarding queue's with its destination.
    private static let queuedColumns = "id, mailbox, precedence, arrived_at, expires_at, size, held"
    private static let bothQueues = """
        SELECT \(queuedColumns), NULL AS destination FROM envelope
        UNION ALL SELECT \(queuedColumns), destination FROM forward
        """

    static func queuedEnvelope(_ row: Row) throws(DamagedColumn) -> QueuedEnvelope? {
        guard let id = MessageID(bytes: [UInt8](try row.value("id", as: Data.self))) else { return nil }
        return QueuedEnvelope(
            id: id, mailbox: Mailbox(try row.value("mailbox")), destination: try row.value("destination"),
            precedence: Precedence(rawValue: try row.value("precedence")) ?? .routine,
            arrivedAt: try row.unsigned("arrived_at", as: UInt64.self), expiresAt: try row.unsigned("expires_at", as: UInt64.self),
            size: try row.value("size"), held: (try row.value("held", as: Int64.self)) != 0)
    }

    public func queued(mailbox: Mailbox?, limit: Int, now: UInt64) throws(StoreError) -> [QueuedEnvelope] {
        guard limit > 0 else { return [] }
        do {
            return try pool.read { db in
                let filter = mailbox == nil ? "" : "WHERE mailbox = ?"
                let arguments: StatementArguments = mailbox.map { [$0.name, limit] } ?? [limit]
                return try Row.fetchAll(
                    db, sql: "SELECT * FROM (\(Self.bothQueues)) \(filter) ORDER BY arrived_at, id LIMIT ?", arguments: arguments
                ).compactMap(Self.queuedEnvelope)
            }
        } catch {
            throw Self.storeError(error, doing: "list the queue in \(path)")
        }
    }

    public func mailboxBacklog(now: UInt64) throws(StoreError) -> [MailboxBacklog] {
        do {
            return try pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT mailbox, COUNT(*) AS n, SUM(size) AS bytes, MIN(arrived_at) AS oldest, SUM(held) AS held
                    FROM envelope GROUP BY mailbox ORDER BY n DESC, mailbox
                    """).map { row in
                    let oldest = try row.unsigned("oldest", as: UInt64.self)
                    return MailboxBacklog(
                        mailbox: Mailbox(try row.value("mailbox")), count: try row.value("n"), bytes: try row.value("bytes"), oldestAge: now > oldest ? now - oldest : 0,
                        held: try row.value("held"))
                }
            }
        } catch {
            throw Self.storeError(error, doing: "read the mailboxes' backlog in \(path)")
        }
    }

    public func setHeld(_ ids: [MessageID], held: Bool) throws(StoreError) -> [MessageID: QueuedEnvelope] {
        guard !ids.isEmpty else { return [:] }
        do {
            return try pool.write { db in
                var result: [MessageID: QueuedEnvelope] = [:]
                for id in ids {
                    for table in [QueueTable.envelope, .forward] {
                        try db.execute(sql: "UPDATE \(table.rawValue) SET held = ? WHERE id = ?", arguments: [held ? 1 : 0, id.bytes.databaseBlob])
                    }
                    let row = try Row.fetchOne(db, sql: "SELECT * FROM (\(Self.bothQueues)) WHERE id = ?", arguments: [id.bytes.databaseBlob])
                    if let envelope = try row.flatMap(Self.queuedEnvelope) { result[id] = envelope }
                }
                return result
            }
        } catch {
            throw Self.storeError(error, doing: "\(held ? "hold" : "release") envelopes in \(path)")
        }
    }

    /// Goes through on a full disk (with the space reserve): a deletion frees room.
    public func deleteByOperator(_ ids: [MessageID], now: UInt64) throws(StoreError) -> [MessageID: QueuedEnvelope] {
        guard !ids.isEmpty else { return [:] }
        return try freeingSpace { () throws(StoreError) in
            do {
                return try pool.write { db in try Self.deleteByOperator(ids, now: now, in: db) }
            } catch {
                throw Self.storeError(error, doing: "delete envelopes in \(path)")
            }
        }
    }

    private static func deleteByOperator(_ ids: [MessageID], now: UInt64, in db: Database) throws -> [MessageID: QueuedEnvelope] {
        var result: [MessageID: QueuedEnvelope] = [:]
        for id in ids {
            guard let envelope = try Row.fetchOne(
                      db, sql: "SELECT * FROM (\(bothQueues)) WHERE id = ?", arguments: [id.bytes.databaseBlob]).flatMap(queuedEnvelope)
            else { continue }
            let table = envelope.destination == nil ? QueueTable.envelope : .forward
            _ = try deleteChunk(of: table, where: "id = ?", arguments: [id.bytes.databaseBlob], in: db) { row in
                // The tombstone the sender's status query reads: undeliverable, and why.
                try db.execute(
                    sql: "UPDATE message SET state = ?, since = ?, reason = ? WHERE id = ?",
                    arguments: [
                        MessageState.undeliverable.rawValue, Int64(now), UndeliverableReason.deletedByOperator.rawValue, try row.value("id", as: Data.self),
                    ])
            }
            result[id] = envelope
        }
        return result
    }
}
