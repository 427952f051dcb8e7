import Foundation
import GRDB

/// The queue's removals (expiry sweeps and revocation purges, of the mailboxes and the
/// forwarding queues, in bounded chunks, leaving tombstones) and its read-only views
/// (states, statistics, occupied mailboxes, integrity).
extension SQLiteEnvelopeStore {
    public func expireCounts(now: UInt64) throws(StoreError) -> ExpiryCounts {
        try freeingSpace { () throws(StoreError) in try removeExpired(now: now) }
    }

    /// Rows one deletion transaction touches, at most: bounds what a sweep or a purge adds
    /// to the write-ahead log (which the space reserve must cover) and how long it holds
    /// the writer.
    static let deletionChunk = 500

    /// Runs `chunk` in one transaction after another until it deletes fewer than a chunk's
    /// worth of rows; returns how many it deleted in all.
    func inChunks(_ chunk: (Database) throws -> Int) throws -> Int {
        var total = 0
        while true {
            let removed = try pool.write { db in try chunk(db) }
            total += removed
            if removed < Self.deletionChunk { return total }
        }
    }

    /// The two queues' tables: the local mailboxes, and the forwarding queues (whose rows
    /// also name a destination relay).
    enum QueueTable: String {
        case envelope, forward
    }

    /// Deletes up to a chunk of `table`'s rows that `condition` selects, marks each id
    /// (`mark` sets the state from the deleted row), and gives their room back to the
    /// mailboxes' and destinations' totals. Returns each deleted row's destination (nil
    /// in the local mailboxes).
    static func deleteChunk(
        of table: QueueTable, where condition: String, arguments: StatementArguments, in db: Database, mark: (Row) throws -> Void
    ) throws -> [String?] {
        let destination = table == .forward ? "destination" : "NULL AS destination"
        let deleted = try Row.fetchAll(
            db,
            sql: """
                DELETE FROM \(table.rawValue) WHERE sequence IN
                    (SELECT sequence FROM \(table.rawValue) WHERE \(condition) LIMIT \(deletionChunk))
                RETURNING id, mailbox, size, expires_at, \(destination)
                """,
            arguments: arguments)
        var freedMailboxes: [String: (count: Int, bytes: Int)] = [:]
        var freedDestinations: [String: (count: Int, bytes: Int)] = [:]
        for row in deleted {
            let size: Int = try row.value("size")
            freedMailboxes[try row.value("mailbox"), default: (0, 0)].count += 1
            freedMailboxes[try row.value("mailbox"), default: (0, 0)].bytes += size
            if let destination: String = try row.value("destination") {
                freedDestinations[destination, default: (0, 0)].count += 1
                freedDestinations[destination, default: (0, 0)].bytes += size
            }
            try mark(row)
        }
        try releaseMailboxUsage(freedMailboxes, in: db)
        for (destination, freed) in freedDestinations {
            try changeDestinationUsage(destination, count: -freed.count, bytes: -freed.bytes, in: db)
        }
        return try deleted.map { row throws(DamagedColumn) in try row.value("destination") }
    }

    func removeExpired(now: UInt64) throws(StoreError) -> ExpiryCounts {
        do {
            var counts = ExpiryCounts()
            for table in [QueueTable.envelope, .forward] {
                _ = try inChunks { db in
                    let expired = try Self.deleteChunk(of: table, where: "expires_at <= ?", arguments: [Int64(now)], in: db) { row in
                        // The tombstone says when it expired, not when the sweep noticed.
                        try db.execute(
                            sql: "UPDATE message SET state = ?, since = ? WHERE id = ?",
                            arguments: [MessageState.expiredUndelivered.rawValue, try row.value("expires_at", as: Int64.self), try row.value("id", as: Data.self)])
                    }
                    for destination in expired {
                        if let destination { counts.forwarding[destination, default: 0] += 1 } else { counts.local += 1 }
                    }
                    return expired.count
                }
            }
            _ = try inChunks { db in
                try db.execute(
                    sql: "DELETE FROM message WHERE id IN (SELECT id FROM message WHERE forget_at <= ? LIMIT ?)",
                    arguments: [Int64(now), Self.deletionChunk])
                return db.changesCount
            }
            return counts
        } catch {
            throw Self.storeError(error, doing: "expire envelopes in \(path)")
        }
    }

    public func purge(mailbox: Mailbox, now: UInt64) throws(StoreError) -> Int {
        try freeingSpace { () throws(StoreError) in try removeAll(of: mailbox, now: now) }
    }

    func removeAll(of mailbox: Mailbox, now: UInt64) throws(StoreError) -> Int {
        do {
            _ = try pool.write { db in try Self.deletePrekeys(db, mailbox: mailbox) }
            var total = 0
            for table in [QueueTable.envelope, .forward] {
                total += try inChunks { db in
                    try Self.deleteChunk(of: table, where: "mailbox = ?", arguments: [mailbox.name], in: db) { row in
                        // The tombstone the sender's status query reads: undeliverable, and why.
                        try db.execute(
                            sql: "UPDATE message SET state = ?, since = ?, reason = ? WHERE id = ? AND state = ?",
                            arguments: [
                                MessageState.undeliverable.rawValue, Int64(now), UndeliverableReason.recipientRevoked.rawValue,
                                try row.value("id", as: Data.self), MessageState.pending.rawValue,
                            ])
                    }.count
                }
            }
            return total
        } catch {
            throw Self.storeError(error, doing: "purge a mailbox in \(path)")
        }
    }

    public func states(of ids: [MessageID], now: UInt64) throws(StoreError) -> [MessageID: RememberedMessage] {
        guard !ids.isEmpty else { return [:] }
        do {
            return try pool.read { db in
                var result: [MessageID: RememberedMessage] = [:]
                for id in ids {
                    guard let row = try Row.fetchOne(
                              db, sql: "SELECT state, since, expires_at, reason, forwarded_to FROM message WHERE id = ?",
                              arguments: [id.bytes.databaseBlob]),
                          let state = MessageState(rawValue: try row.value("state")) else { continue }
                    let expiresAt = try row.unsigned("expires_at", as: UInt64.self)
                    if state == .pending && expiresAt <= now {
                        result[id] = RememberedMessage(state: .expiredUndelivered, since: expiresAt)
                    } else {
                        let reason = state == .undeliverable ? UndeliverableReason(rawValue: try row.value("reason")) : nil
                        let relay: String? = state == .forwarded ? try row.value("forwarded_to") : nil
                        result[id] = RememberedMessage(state: state, since: try row.unsigned("since", as: UInt64.self), reason: reason, forwardedTo: relay)
                    }
                }
                return result
            }
        } catch {
            throw Self.storeError(error, doing: "read message states in \(path)")
        }
    }

    public func statistics(now: UInt64) throws(StoreError) -> QueueStatistics {
        do {
            return try pool.read { db in
                var statistics = QueueStatistics()
                var oldest: UInt64?
                for row in try Row.fetchAll(db, sql: "SELECT precedence, COUNT(*) AS n, SUM(size) AS bytes, MIN(arrived_at) AS oldest FROM envelope GROUP BY precedence") {
                    guard let precedence = Precedence(rawValue: try row.value("precedence")) else { continue }
                    statistics.countByPrecedence[precedence] = try row.value("n")
                    statistics.bytes += try row.value("bytes", as: Int.self)
                    let arrived = try row.unsigned("oldest", as: UInt64.self)
                    oldest = min(oldest ?? arrived, arrived)
                }
                if let oldest { statistics.oldestAge = now > oldest ? now - oldest : 0 }
                // Not mailbox_usage: it counts recipients whose envelopes wait to be forwarded too.
                statistics.mailboxes = try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT mailbox) FROM envelope") ?? 0
                for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM message GROUP BY state") {
                    if let state = MessageState(rawValue: try row.value("state")) { statistics.remembered[state] = try row.value("n") }
                }
                return statistics
            }
        } catch {
            throw Self.storeError(error, doing: "read statistics in \(path)")
        }
    }

    public func occupiedMailboxes() throws(StoreError) -> [Mailbox] {
        do {
            return try pool.read { db in
                try String.fetchAll(db, sql: """
                    SELECT mailbox FROM mailbox_usage WHERE count > 0
                    UNION SELECT mailbox FROM prekey UNION SELECT mailbox FROM one_time_prekey UNION SELECT mailbox FROM kem_prekey
                    ORDER BY mailbox
                    """).map(Mailbox.init)
            }
        } catch {
            throw Self.storeError(error, doing: "list mailboxes in \(path)")
        }
    }

    /// SQLite's own consistency check (`PRAGMA integrity_check`): "ok" or the problems.
    public func integrityCheck() throws(StoreError) -> String {
        do {
            return try pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
        } catch {
            throw Self.storeError(error, doing: "check integrity in \(path)")
        }
    }
}
