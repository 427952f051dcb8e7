#if Postgres
import Logging
import NIOCore
import PostgresNIO
public import ValiseStore

/// The operator's view of the queue and actions on it (`OperatorQueue`), as
/// `SQLiteEnvelopeStore` offers them, for the envelopes of every node. Any node's control
/// socket may act: a release is announced, so that the node holding the recipient's
/// connection (or the relay link) delivers at once.
extension PostgresEnvelopeStore: OperatorQueue {
    /// Both queues' rows in one shape: the forwarding queue's with its destination.
    private static let queuedColumns = "id, mailbox, precedence, arrived_at, expires_at, size, held"
    private static let bothQueues = """
        SELECT \(queuedColumns), NULL::text AS destination FROM envelope
        UNION ALL SELECT \(queuedColumns), destination FROM forward
        """

    /// Rows of (id, mailbox, precedence, arrived_at, expires_at, size, held, destination);
    /// a row whose id is not 16 bytes is left out, as by the SQLite store.
    private static func queuedEnvelopes(_ rows: PostgresRows) async throws -> [QueuedEnvelope] {
        var result: [QueuedEnvelope] = []
        let columns = (ByteBuffer, String, Int16, Int64, Int64, Int32, Bool, String?).self
        for try await (id, mailbox, precedence, arrivedAt, expiresAt, size, held, destination) in rows.decode(columns) {
            guard let id = MessageID(bytes: Array(id.readableBytesView)) else { continue }
            result.append(QueuedEnvelope(
                id: id, mailbox: Mailbox(mailbox), destination: destination, precedence: Precedence(rawValue: Int(precedence)) ?? .routine,
                arrivedAt: UInt64(max(arrivedAt, 0)), expiresAt: UInt64(max(expiresAt, 0)), size: Int(size), held: held))
        }
        return result
    }

    /// Runs `statement` (an UPDATE or a DELETE, given the table's name) on the local
    /// mailboxes' table and the forwarding queues', returning the rows it touched.
    private static func inBothQueues(
        on connection: PostgresConnection, logger: Logger, _ statement: (String) -> PostgresQuery
    ) async throws -> [QueuedEnvelope] {
        var touched: [QueuedEnvelope] = []
        for (table, destination) in [("envelope", "NULL::text"), ("forward", "destination")] {
            var query = statement(table)
            query.sql += " RETURNING \(queuedColumns), \(destination)"
            touched += try await queuedEnvelopes(connection.rows(query, logger: logger))
        }
        return touched
    }

    public func queued(mailbox: Mailbox?, limit: Int, now: UInt64) throws(StoreError) -> [QueuedEnvelope] {
        guard limit > 0 else { return [] }
        return try database.withConnection { [logger = self.logger] connection in
            // ORDER BY id: bytea compares byte by byte, as SQLite's blobs do.
            let query: PostgresQuery = """
                SELECT * FROM (\(unescaped: Self.bothQueues)) AS queued
                WHERE \(mailbox?.name)::text IS NULL OR mailbox = \(mailbox?.name)
                ORDER BY arrived_at, id LIMIT \(limit)
                """
            return try await Self.queuedEnvelopes(connection.rows(query, logger: logger))
        }
    }

    public func mailboxBacklog(now: UInt64) throws(StoreError) -> [MailboxBacklog] {
        try database.withConnection { [logger = self.logger] connection in
            // COLLATE "C": ties in byte order, as SQLite sorts them, whatever the database's collation.
            let rows = try await connection.rows(
                """
                SELECT mailbox, count(*), sum(size)::bigint, min(arrived_at), count(*) FILTER (WHERE held)
                FROM envelope GROUP BY mailbox ORDER BY count(*) DESC, mailbox COLLATE "C"
                """, logger: logger)
            var backlog: [MailboxBacklog] = []
            for try await (mailbox, count, bytes, oldest, held) in rows.decode((String, Int64, Int64, Int64, Int64).self) {
                let oldest = UInt64(max(oldest, 0))
                backlog.append(MailboxBacklog(
                    mailbox: Mailbox(mailbox), count: Int(count), bytes: Int(bytes), oldestAge: now > oldest ? now - oldest : 0, held: Int(held)))
            }
            return backlog
        }
    }

    public func setHeld(_ ids: [MessageID], held: Bool) throws(StoreError) -> [MessageID: QueuedEnvelope] {
        guard !ids.isEmpty else { return [:] }
        let keys = ids.map { ByteBuffer(bytes: $0.bytes) }
        return try database.withTransaction { [logger = self.logger] connection in
            let changed = try await Self.inBothQueues(on: connection, logger: logger) { table in
                "UPDATE \(unescaped: table) SET held = \(held) WHERE id = ANY(\(keys))"
            }
            if !held {
                // Delivered at once by whichever node serves the recipient or the destination.
                let payload = PostgresAnnouncement.payload(
                    mailboxes: changed.filter { $0.destination == nil }.map(\.mailbox), destinations: changed.compactMap(\.destination))
                try await PostgresAnnouncement.announce(payload, schema: self.database.configuration.schema, on: connection, logger: logger)
            }
            return Dictionary(changed.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// Each id is remembered as undeliverable (deleted by the operator) since `now`. Not
    /// refused for `queue.maxStoreBytes`: a deletion frees room.
    public func deleteByOperator(_ ids: [MessageID], now: UInt64) throws(StoreError) -> [MessageID: QueuedEnvelope] {
        guard !ids.isEmpty else { return [:] }
        let keys = ids.map { ByteBuffer(bytes: $0.bytes) }
        return try database.withTransaction { [logger = self.logger] connection in
            let deleted = try await Self.inBothQueues(on: connection, logger: logger) { table in
                "DELETE FROM \(unescaped: table) WHERE id = ANY(\(keys))"
            }
            guard !deleted.isEmpty else { return [:] }
            // Their room goes back to their mailboxes' totals (which count the recipient's
            // envelopes in both queues) and their destinations'.
            var mailboxes: [String: QueueTotals] = [:]
            var destinations: [String: QueueTotals] = [:]
            for envelope in deleted {
                mailboxes[envelope.mailbox.name, default: QueueTotals()].add(envelope.size)
                if let destination = envelope.destination { destinations[destination, default: QueueTotals()].add(envelope.size) }
            }
            try await self.changeUsage(mailboxes: mailboxes.mapValues { -$0 }, destinations: destinations.mapValues { -$0 }, on: connection)
            // The tombstone the sender's status query reads: undeliverable, and why.
            try await connection.rows(
                """
                UPDATE message SET state = \(Int16(MessageState.undeliverable.rawValue)), since = \(Int64(clamping: now)),
                    reason = \(Int16(UndeliverableReason.deletedByOperator.rawValue))
                WHERE id = ANY(\(deleted.map { ByteBuffer(bytes: $0.id.bytes) }))
                """, logger: logger)
            return Dictionary(deleted.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// What the store's tables and their indexes take in the database, in bytes (`valised
    /// status`'s store size; PostgreSQL's own files, write-ahead log included, are the
    /// database administrator's to watch).
    public func storeBytes() throws(StoreError) -> Int {
        try database.withConnection { [logger = self.logger] connection in
            let rows = try await connection.rows(
                """
                SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relkind = 'r'
                """, logger: logger)
            var total: Int64 = 0
            for try await bytes in rows.decode(Int64.self) { total = bytes }
            return Int(total)
        }
    }
}
#endif
