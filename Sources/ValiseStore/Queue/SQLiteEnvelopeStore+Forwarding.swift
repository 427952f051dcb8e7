import Foundation
import GRDB

/// The forwarding queues: envelopes this relay accepted for recipients homed at other
/// relays, kept in their own table until the destination answers that it committed them
/// (custody transfer), with per-destination totals kept in step as the mailboxes' are.
extension SQLiteEnvelopeStore {
    static func registerForwardingMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("forwarding-queue") { db in
            // As `envelope`, with the relay it waits for. No column names the sender.
            try db.execute(sql: """
                CREATE TABLE forward (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    destination TEXT NOT NULL,
                    mailbox TEXT NOT NULL,
                    id BLOB NOT NULL UNIQUE,
                    precedence INTEGER NOT NULL,
                    requested_ttl INTEGER NOT NULL,
                    arrived_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    hops INTEGER NOT NULL,
                    size INTEGER NOT NULL,
                    body BLOB NOT NULL
                );
                CREATE INDEX forward_order ON forward(destination, precedence DESC, sequence);
                CREATE INDEX forward_expiry ON forward(expires_at);
                CREATE INDEX forward_mailbox ON forward(mailbox);
                -- Per-destination totals for quotas, kept in step with forward.
                CREATE TABLE destination_usage (
                    destination TEXT PRIMARY KEY,
                    count INTEGER NOT NULL,
                    bytes INTEGER NOT NULL
                ) WITHOUT ROWID;
                -- Relays that held each envelope, counting this one; 1 for all queued before.
                ALTER TABLE envelope ADD COLUMN hops INTEGER NOT NULL DEFAULT 1;
                -- The relay that took custody of a forwarded id (state 5); NULL otherwise.
                ALTER TABLE message ADD COLUMN forwarded_to TEXT;
                """)
        }
    }

    // MARK: Rows, inside a caller's write transaction

    static func insertForward(_ envelope: IncomingEnvelope, to destination: String, arrival: UInt64, expiry: UInt64, in db: Database) throws {
        let insert = BoundStatement(try db.cachedStatement(sql: """
            INSERT INTO forward (destination, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """), in: db)
        insert.bind(1, destination)
        insert.bind(2, envelope.mailbox.name)
        insert.bind(3, envelope.id.bytes)
        insert.bind(4, Int64(envelope.precedence.rawValue))
        insert.bind(5, Int64(envelope.requestedTTL))
        insert.bind(6, Int64(arrival))
        insert.bind(7, Int64(expiry))
        insert.bind(8, Int64(envelope.hops))
        insert.bind(9, Int64(envelope.body.count))
        insert.bind(10, envelope.body)
        try insert.run()
    }

    static func destinationUsage(_ destination: String, in db: Database) throws -> QueueUsage {
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT count, bytes FROM destination_usage WHERE destination = ?"), arguments: [destination])
        return QueueUsage(count: row?["count"] ?? 0, bytes: row?["bytes"] ?? 0)
    }

    /// Adds to (or with negative amounts, takes from) a destination's totals; an emptied
    /// destination's row goes, so that `destinations()` no longer lists it.
    static func changeDestinationUsage(_ destination: String, count: Int, bytes: Int, in db: Database) throws {
        guard count != 0 || bytes != 0 else { return }
        try db.execute(
            sql: """
                INSERT INTO destination_usage (destination, count, bytes) VALUES (?, ?, ?)
                ON CONFLICT(destination) DO UPDATE SET count = count + excluded.count, bytes = bytes + excluded.bytes
                """,
            arguments: [destination, count, bytes])
        try db.execute(sql: "DELETE FROM destination_usage WHERE destination = ? AND count <= 0", arguments: [destination])
    }

    /// Deletes completed envelopes and leaves their tombstones; returns, per list, how many
    /// it deleted (an id completed twice counts for the first list only).
    static func complete(_ lists: [[ForwardCompletion]], now: UInt64, in db: Database) throws -> [Int] {
        let delete = try db.cachedStatement(sql: "DELETE FROM forward WHERE id = ? RETURNING mailbox, destination, size")
        let mark = try db.cachedStatement(sql: "UPDATE message SET state = ?, since = ?, reason = ?, forwarded_to = ? WHERE id = ?")
        var freedMailboxes: [String: (count: Int, bytes: Int)] = [:]
        var freedDestinations: [String: (count: Int, bytes: Int)] = [:]
        var deletedPerList: [Int] = []
        for completions in lists {
            var deleted = 0
            for completion in completions {
                // Matched by id alone: whichever queue it is in now, the relay that answered has it.
                guard let row = try Row.fetchOne(delete, arguments: [completion.id.bytes.databaseBlob]) else { continue }
                deleted += 1
                let size: Int = try row.value("size")
                freedMailboxes[try row.value("mailbox"), default: (0, 0)].count += 1
                freedMailboxes[try row.value("mailbox"), default: (0, 0)].bytes += size
                freedDestinations[try row.value("destination"), default: (0, 0)].count += 1
                freedDestinations[try row.value("destination"), default: (0, 0)].bytes += size
                switch completion.outcome {
                case .transferred:
                    try mark.execute(arguments: [
                        MessageState.forwarded.rawValue, Int64(now), 0, completion.destination, completion.id.bytes.databaseBlob])
                case .undeliverable(let reason):
                    try mark.execute(arguments: [
                        MessageState.undeliverable.rawValue, Int64(now), reason.rawValue, nil, completion.id.bytes.databaseBlob])
                }
            }
            deletedPerList.append(deleted)
        }
        try releaseMailboxUsage(freedMailboxes, in: db)
        for (destination, freed) in freedDestinations {
            try changeDestinationUsage(destination, count: -freed.count, bytes: -freed.bytes, in: db)
        }
        return deletedPerList
    }

    static func releaseMailboxUsage(_ freed: [String: (count: Int, bytes: Int)], in db: Database) throws {
        for (mailbox, amount) in freed {
            try db.execute(
                sql: "UPDATE mailbox_usage SET count = count - ?, bytes = bytes - ? WHERE mailbox = ?",
                arguments: [amount.count, amount.bytes, mailbox])
            try db.execute(sql: "DELETE FROM mailbox_usage WHERE mailbox = ? AND count <= 0", arguments: [mailbox])
        }
    }

    /// Moves a recipient's envelopes between the local mailbox and the forwarding queues;
    /// the mailbox's totals stay (the same recipient's envelopes, in another queue).
    static func move(_ mailbox: Mailbox, to destination: String?, in db: Database) throws -> Int {
        // What leaves each forwarding queue (all of them for the local mailbox, the others
        // for a destination).
        let leaving = try Row.fetchAll(
            db,
            sql: """
                SELECT destination, COUNT(*) AS n, SUM(size) AS bytes FROM forward
                WHERE mailbox = ? AND destination IS NOT ? GROUP BY destination
                """,
            arguments: [mailbox.name, destination])
        var moved = 0
        var movedBytes = 0
        for row in leaving {
            let count: Int = try row.value("n")
            let bytes: Int = try row.value("bytes")
            try changeDestinationUsage(try row.value("destination"), count: -count, bytes: -bytes, in: db)
            moved += count
            movedBytes += bytes
        }
        guard let destination else {
            try db.execute(
                sql: """
                    INSERT INTO envelope (mailbox, id, precedence, arrived_at, expires_at, size, body, requested_ttl, hops, held)
                    SELECT mailbox, id, precedence, arrived_at, expires_at, size, body, requested_ttl, hops, held
                    FROM forward WHERE mailbox = ? ORDER BY sequence
                    """,
                arguments: [mailbox.name])
            try db.execute(sql: "DELETE FROM forward WHERE mailbox = ?", arguments: [mailbox.name])
            return moved
        }
        // Another destination: the same rows, sent elsewhere, in their order.
        try db.execute(
            sql: "UPDATE forward SET destination = ? WHERE mailbox = ? AND destination <> ?",
            arguments: [destination, mailbox.name, destination])
        let local = try Row.fetchOne(
            db, sql: "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM envelope WHERE mailbox = ?", arguments: [mailbox.name])
        let localCount: Int = local?["n"] ?? 0
        let localBytes: Int = local?["bytes"] ?? 0
        if localCount > 0 {
            // This relay held it as the recipient's home and now passes it on: one more hop.
            try db.execute(
                sql: """
                    INSERT INTO forward (destination, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body, held)
                    SELECT ?, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, MIN(hops + 1, 255), size, body, held
                    FROM envelope WHERE mailbox = ? ORDER BY sequence
                    """,
                arguments: [destination, mailbox.name])
            try db.execute(sql: "DELETE FROM envelope WHERE mailbox = ?", arguments: [mailbox.name])
        }
        try changeDestinationUsage(destination, count: moved + localCount, bytes: movedBytes + localBytes, in: db)
        return moved + localCount
    }
}

extension SQLiteEnvelopeStore {
    // MARK: EnvelopeStore's forwarding methods

    public func nextForForwarding(destination: String, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [OutgoingEnvelope] {
        guard limit > 0 else { return [] }
        do {
            return try pool.read { db in
                // The order and the ids first, without bodies: a link with many envelopes in
                // flight leaves out many rows, and each body is kilobytes.
                let order = try Row.fetchAll(
                    db.cachedStatement(sql: """
                        SELECT sequence, id FROM forward
                        WHERE destination = ? AND expires_at > ? AND held = 0
                        ORDER BY precedence DESC, sequence LIMIT ?
                        """),
                    arguments: [destination, Int64(now), limit + excluding.count])
                let chosen = try Self.window(order, excluding: excluding, limit: limit) { row, _ throws(DamagedColumn) in try row.value("sequence", as: Int64.self) }
                guard !chosen.isEmpty else { return [] }
                let rows = try Row.fetchAll(
                    db, sql: """
                        SELECT sequence, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, body FROM forward
                        WHERE sequence IN (\(databaseQuestionMarks(count: chosen.count)))
                        ORDER BY precedence DESC, sequence
                        """,
                    arguments: StatementArguments(chosen))
                return try Self.window(rows, excluding: [], limit: limit) { row, id throws(DamagedColumn) in
                    OutgoingEnvelope(
                        sequence: try row.value("sequence"), destination: destination, mailbox: Mailbox(try row.value("mailbox")), id: id,
                        precedence: Precedence(rawValue: try row.value("precedence")) ?? .routine,
                        requestedTTL: UInt8(clamping: try row.value("requested_ttl", as: Int64.self)),
                        arrivedAt: try row.unsigned("arrived_at", as: UInt64.self), expiresAt: try row.unsigned("expires_at", as: UInt64.self),
                        hops: UInt8(clamping: try row.value("hops", as: Int64.self)), body: [UInt8](try row.value("body", as: Data.self)))
                }
            }
        } catch {
            throw Self.storeError(error, doing: "read the forwarding queue in \(path)")
        }
    }

    /// Goes through on a full disk (with the space reserve): completions free room.
    public func completeForwarding(_ completions: [ForwardCompletion], now: UInt64) throws(StoreError) -> Int {
        guard !completions.isEmpty else { return 0 }
        return try freeingSpace { () throws(StoreError) in
            do {
                return try pool.write { db in try Self.complete([completions], now: now, in: db) }.reduce(0, +)
            } catch {
                throw Self.storeError(error, doing: "record forwarding completions in \(path)")
            }
        }
    }

    /// One transaction; its log growth is bounded by the mailbox's quota (the most one
    /// recipient's envelopes can hold).
    public func reroute(mailbox: Mailbox, to destination: String?, now: UInt64) throws(StoreError) -> Int {
        do {
            return try pool.write { db in try Self.move(mailbox, to: destination, in: db) }
        } catch {
            throw Self.storeError(error, doing: "reroute a mailbox in \(path)")
        }
    }

    public func forwardingBacklog(now: UInt64) throws(StoreError) -> [String: ForwardingBacklog] {
        do {
            return try pool.read { db in
                var backlog: [String: ForwardingBacklog] = [:]
                for row in try Row.fetchAll(
                    db, sql: "SELECT destination, COUNT(*) AS n, SUM(size) AS bytes, MIN(arrived_at) AS oldest FROM forward GROUP BY destination") {
                    let oldest = try row.unsigned("oldest", as: UInt64.self)
                    backlog[try row.value("destination")] = ForwardingBacklog(count: try row.value("n"), bytes: try row.value("bytes"), oldestAge: now > oldest ? now - oldest : 0)
                }
                return backlog
            }
        } catch {
            throw Self.storeError(error, doing: "read the forwarding backlog in \(path)")
        }
    }

    public func destinations() throws(StoreError) -> [String] {
        do {
            return try pool.read { db in
                try String.fetchAll(db, sql: "SELECT destination FROM destination_usage WHERE count > 0 ORDER BY destination")
            }
        } catch {
            throw Self.storeError(error, doing: "list forwarding destinations in \(path)")
        }
    }
}
