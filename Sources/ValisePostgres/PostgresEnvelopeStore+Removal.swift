#if Postgres
import NIOCore
import PostgresNIO
public import ValiseStore

/// The queue's removals (expiry sweeps and revocation purges, under advisory locks so that
/// one node does each, leaving tombstones) and its read-only views, as `SQLiteEnvelopeStore`'s.
extension PostgresEnvelopeStore {
    /// Rows one sweep transaction deletes, at most: bounds how long it holds row locks.
    static let deletionChunk: Int64 = 500

    /// One chunk after another, each a transaction holding the sweep lock. A node that finds
    /// another sweeping leaves the job to it and counts nothing (each expired envelope is
    /// counted once, by the node that removed it).
    public func expireCounts(now: UInt64) throws(StoreError) -> ExpiryCounts {
        var counts = ExpiryCounts()
        for forwarding in [false, true] {
            while true {
                let chunk = try write("expire envelopes") { connection in
                    try await self.expireChunk(forwarding: forwarding, now: now, on: connection)
                }
                guard let chunk else { return counts }
                for (destination, count) in chunk.counts {
                    if let destination { counts.forwarding[destination, default: 0] += count } else { counts.local += count }
                }
                if chunk.rows < Self.deletionChunk { break }
            }
        }
        while true {
            let forgotten = try write("forget old ids") { connection -> Int64? in
                guard try await self.tryLock(PostgresSchema.sweepLock, on: connection) else { return nil }
                let rows = try await connection.rows("""
                    WITH gone AS (DELETE FROM message WHERE id IN
                        (SELECT id FROM message WHERE forget_at <= \(Int64(clamping: now)) LIMIT \(Self.deletionChunk)) RETURNING 1)
                    SELECT count(*) FROM gone
                    """, logger: self.logger)
                var count: Int64 = 0
                for try await value in rows.decode(Int64.self) { count = value }
                return count
            }
            guard let forgotten, forgotten == Self.deletionChunk else { return counts }
        }
    }

    /// What one sweep transaction removed: per destination (nil: the local mailboxes), and
    /// how many rows in all; nil when another node holds the sweep lock.
    struct SweepChunk: Sendable {
        var counts: [String?: Int] = [:]
        var rows: Int64 = 0
    }

    private func expireChunk(forwarding: Bool, now: UInt64, on connection: PostgresConnection) async throws -> SweepChunk? {
        guard try await tryLock(PostgresSchema.sweepLock, on: connection) else { return nil }
        let expired = Int16(MessageState.expiredUndelivered.rawValue)
        let now = Int64(clamping: now)
        // The tombstone says when it expired, not when the sweep noticed.
        let rows: PostgresRows
        if forwarding {
            rows = try await connection.rows("""
                WITH gone AS (
                    DELETE FROM forward WHERE sequence IN
                        (SELECT sequence FROM forward WHERE expires_at <= \(now) LIMIT \(Self.deletionChunk) FOR UPDATE SKIP LOCKED)
                    RETURNING id, mailbox, destination, size, expires_at),
                marked AS (UPDATE message m SET state = \(expired), since = gone.expires_at FROM gone WHERE m.id = gone.id)
                SELECT mailbox, destination, count(*), sum(size)::int8 FROM gone GROUP BY mailbox, destination
                """, logger: logger)
        } else {
            rows = try await connection.rows("""
                WITH gone AS (
                    DELETE FROM envelope WHERE sequence IN
                        (SELECT sequence FROM envelope WHERE expires_at <= \(now) LIMIT \(Self.deletionChunk) FOR UPDATE SKIP LOCKED)
                    RETURNING id, mailbox, size, expires_at),
                marked AS (UPDATE message m SET state = \(expired), since = gone.expires_at FROM gone WHERE m.id = gone.id)
                SELECT mailbox, NULL::text, count(*), sum(size)::int8 FROM gone GROUP BY mailbox
                """, logger: logger)
        }
        var chunk = SweepChunk()
        var mailboxes: [String: QueueTotals] = [:]
        var destinations: [String: QueueTotals] = [:]
        for try await (mailbox, destination, count, bytes) in rows.decode((String, String?, Int64, Int64).self) {
            chunk.rows += count
            chunk.counts[destination, default: 0] += Int(count)
            mailboxes[mailbox, default: QueueTotals()].count -= Int(count)
            mailboxes[mailbox, default: QueueTotals()].bytes -= Int(bytes)
            if let destination {
                destinations[destination, default: QueueTotals()].count -= Int(count)
                destinations[destination, default: QueueTotals()].bytes -= Int(bytes)
            }
        }
        try await changeUsage(mailboxes: mailboxes, destinations: destinations, on: connection)
        return chunk
    }

    /// An advisory lock's key text: the schema and the lock's name (PostgresSchema).
    func advisoryKey(_ name: String) -> String { database.configuration.schema + "/" + name }

    /// Whether this transaction got the advisory lock `name` (released at its end).
    func tryLock(_ name: String, on connection: PostgresConnection) async throws -> Bool {
        var locked = false
        for try await value in try await connection.rows(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(\(advisoryKey(name)), 0))", logger: logger).decode(Bool.self) {
            locked = value
        }
        return locked
    }

    /// One transaction (bounded by the mailbox's quota), after any other node's purge: the
    /// relay expects the mailbox empty when this returns. The prekeys go too.
    public func purge(mailbox: Mailbox, now: UInt64) throws(StoreError) -> Int {
        try write("purge a mailbox") { connection in
            let logger = self.logger
            let name = mailbox.name
            try await connection.rows(
                "SELECT pg_advisory_xact_lock(hashtextextended(\(self.advisoryKey(PostgresSchema.purgeLock)), 0))", logger: logger)
            try await Self.deletePrekeys(of: mailbox, on: connection, logger: logger)
            // The tombstone the sender's status query reads: undeliverable, and why.
            let rows = try await connection.rows("""
                WITH local AS (DELETE FROM envelope WHERE mailbox = \(name) RETURNING id, NULL::text AS destination, size),
                forwarded AS (DELETE FROM forward WHERE mailbox = \(name) RETURNING id, destination, size),
                gone AS (SELECT * FROM local UNION ALL SELECT * FROM forwarded),
                marked AS (
                    UPDATE message m SET state = \(Int16(MessageState.undeliverable.rawValue)), since = \(Int64(clamping: now)),
                        reason = \(Int16(UndeliverableReason.recipientRevoked.rawValue))
                    FROM gone WHERE m.id = gone.id AND m.state = \(Int16(MessageState.pending.rawValue)))
                SELECT destination, count(*), sum(size)::int8 FROM gone GROUP BY destination
                """, logger: logger)
            var total = QueueTotals()
            var destinations: [String: QueueTotals] = [:]
            for try await (destination, count, bytes) in rows.decode((String?, Int64, Int64).self) {
                total.count += Int(count)
                total.bytes += Int(bytes)
                if let destination { destinations[destination] = QueueTotals(count: -Int(count), bytes: -Int(bytes)) }
            }
            try await self.changeUsage(mailboxes: [name: -total], destinations: destinations, on: connection)
            return total.count
        }
    }

    public func states(of ids: [MessageID], now: UInt64) throws(StoreError) -> [MessageID: RememberedMessage] {
        guard !ids.isEmpty else { return [:] }
        let logger = self.logger
        return try read("read message states") { connection in
            var result: [MessageID: RememberedMessage] = [:]
            let rows = try await connection.rows(
                "SELECT id, state, since, expires_at, reason, forwarded_to FROM message WHERE id = ANY(\(ids.buffers)::bytea[])", logger: logger)
            for try await (id, state, since, expiresAt, reason, relay) in rows.decode((ByteBuffer, Int, Int64, Int64, Int, String?).self) {
                guard let id = MessageID(buffer: id), let state = MessageState(rawValue: state) else { continue }
                let expiry = UInt64(clamping: expiresAt)
                if state == .pending && expiry <= now {
                    result[id] = RememberedMessage(state: .expiredUndelivered, since: expiry)
                } else {
                    result[id] = RememberedMessage(
                        state: state, since: UInt64(clamping: since), reason: state == .undeliverable ? UndeliverableReason(rawValue: reason) : nil,
                        forwardedTo: state == .forwarded ? relay : nil)
                }
            }
            return result
        }
    }

    public func statistics(now: UInt64) throws(StoreError) -> QueueStatistics {
        let logger = self.logger
        return try read("read statistics") { connection in
            var statistics = QueueStatistics()
            var oldest: Int64?
            let rows = try await connection.rows(
                "SELECT precedence, count(*), sum(size)::int8, min(arrived_at) FROM envelope GROUP BY precedence", logger: logger)
            for try await (value, count, bytes, arrived) in rows.decode((Int, Int64, Int64, Int64).self) {
                guard let precedence = Precedence(rawValue: value) else { continue }
                statistics.countByPrecedence[precedence] = Int(count)
                statistics.bytes += Int(bytes)
                oldest = min(oldest ?? arrived, arrived)
            }
            if let oldest { statistics.oldestAge = now > UInt64(clamping: oldest) ? now - UInt64(clamping: oldest) : 0 }
            // Not mailbox_usage: it counts recipients whose envelopes wait to be forwarded too.
            for try await count in try await connection.rows("SELECT count(DISTINCT mailbox) FROM envelope", logger: logger).decode(Int64.self) {
                statistics.mailboxes = Int(count)
            }
            for try await (state, count) in try await connection.rows(
                "SELECT state, count(*) FROM message GROUP BY state", logger: logger).decode((Int, Int64).self) {
                if let state = MessageState(rawValue: state) { statistics.remembered[state] = Int(count) }
            }
            return statistics
        }
    }

    public func occupiedMailboxes() throws(StoreError) -> [Mailbox] {
        let logger = self.logger
        return try read("list mailboxes") { connection in
            var mailboxes: [Mailbox] = []
            let rows = try await connection.rows("""
                SELECT mailbox FROM mailbox_usage WHERE count > 0
                UNION SELECT mailbox FROM prekey UNION SELECT mailbox FROM one_time_prekey UNION SELECT mailbox FROM kem_prekey
                ORDER BY mailbox
                """, logger: logger)
            for try await name in rows.decode(String.self) { mailboxes.append(Mailbox(name)) }
            return mailboxes
        }
    }
}
#endif
