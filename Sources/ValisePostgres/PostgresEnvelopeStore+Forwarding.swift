#if Postgres
import NIOCore
import PostgresNIO
public import ValiseStore

/// The forwarding queues (custody transfer to other relays), as `SQLiteEnvelopeStore`'s:
/// envelopes for recipients homed elsewhere, with per-destination totals kept in step.
extension PostgresEnvelopeStore {
    public func nextForForwarding(destination: String, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [OutgoingEnvelope] {
        guard limit > 0 else { return [] }
        let logger = self.logger
        return try read("read the forwarding queue") { connection in
            let rows = try await connection.rows("""
                SELECT sequence, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, body FROM forward
                WHERE destination = \(destination) AND expires_at > \(Int64(clamping: now)) AND NOT held
                    AND id <> ALL(\(excluding.buffers)::bytea[])
                ORDER BY precedence DESC, sequence LIMIT \(Int64(limit))
                """, logger: logger)
            return try await Self.outgoingEnvelopes(rows, destination: destination)
        }
    }

    /// Rows of `sequence, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, body`.
    static func outgoingEnvelopes(_ rows: PostgresRows, destination: String) async throws -> [OutgoingEnvelope] {
        var envelopes: [OutgoingEnvelope] = []
        for try await (sequence, mailbox, id, precedence, requestedTTL, arrived, expires, hops, body)
            in rows.decode((Int64, String, ByteBuffer, Int, Int, Int64, Int64, Int, ByteBuffer).self) {
            guard let id = MessageID(buffer: id) else { continue }
            envelopes.append(OutgoingEnvelope(
                sequence: sequence, destination: destination, mailbox: Mailbox(mailbox), id: id,
                precedence: Precedence(rawValue: precedence) ?? .routine, requestedTTL: UInt8(clamping: requestedTTL),
                arrivedAt: UInt64(clamping: arrived), expiresAt: UInt64(clamping: expires), hops: UInt8(clamping: hops),
                body: Array(body.readableBytesView)))
        }
        return envelopes
    }

    public func completeForwarding(_ completions: [ForwardCompletion], now: UInt64) throws(StoreError) -> Int {
        guard !completions.isEmpty else { return 0 }
        return try write("record forwarding completions") { connection in
            try await self.complete([completions], now: now, on: connection).reduce(0, +)
        }
    }

    /// Deletes completed envelopes (matched by id alone: whichever queue holds it now, the
    /// relay that answered has it) and leaves their tombstones, inside the caller's
    /// transaction; per list, how many it deleted (an id completed twice counts for the
    /// first only).
    func complete(_ lists: [[ForwardCompletion]], now: UInt64, on connection: PostgresConnection) async throws -> [Int] {
        var seen = Set<MessageID>()
        var ids: [ByteBuffer] = []
        var owners: [Int32] = []
        var states: [Int16] = []
        var reasons: [Int16] = []
        var relays: [String] = []
        for (index, completions) in lists.enumerated() {
            for completion in completions where seen.insert(completion.id).inserted {
                ids.append(completion.id.buffer)
                owners.append(Int32(index))
                switch completion.outcome {
                case .transferred:
                    states.append(Int16(MessageState.forwarded.rawValue))
                    reasons.append(0)
                    relays.append(completion.destination)
                case .undeliverable(let reason):
                    states.append(Int16(MessageState.undeliverable.rawValue))
                    reasons.append(Int16(reason.rawValue))
                    relays.append("")
                }
            }
        }
        var deleted = lists.map { _ in 0 }
        guard !ids.isEmpty else { return deleted }
        let rows = try await connection.rows("""
            WITH gone AS (
                DELETE FROM forward f
                USING unnest(\(ids)::bytea[], \(owners)::int4[], \(states)::int2[], \(reasons)::int2[], \(relays)::text[])
                    AS a(id, owner, state, reason, relay)
                WHERE f.id = a.id RETURNING a.owner, a.id, a.state, a.reason, a.relay, f.mailbox, f.destination, f.size),
            marked AS (
                UPDATE message m SET state = gone.state, since = \(Int64(clamping: now)), reason = gone.reason,
                    forwarded_to = NULLIF(gone.relay, '')
                FROM gone WHERE m.id = gone.id)
            SELECT owner, mailbox, destination, size FROM gone
            """, logger: logger)
        var freedMailboxes: [String: QueueTotals] = [:]
        var freedDestinations: [String: QueueTotals] = [:]
        for try await (owner, mailbox, destination, size) in rows.decode((Int32, String, String, Int32).self) {
            deleted[Int(owner)] += 1
            freedMailboxes[mailbox, default: QueueTotals()].add(Int(size))
            freedDestinations[destination, default: QueueTotals()].add(Int(size))
        }
        try await changeUsage(mailboxes: freedMailboxes.mapValues { -$0 }, destinations: freedDestinations.mapValues { -$0 }, on: connection)
        return deleted
    }

    /// One transaction; announces the queue the envelopes joined.
    public func reroute(mailbox: Mailbox, to destination: String?, now: UInt64) throws(StoreError) -> Int {
        try write("reroute a mailbox") { connection in
            let moved = try await self.move(mailbox, to: destination, on: connection)
            if moved > 0 {
                try await self.announce(
                    mailboxes: destination == nil ? [mailbox] : [], destinations: destination.map { [$0] } ?? [], on: connection)
            }
            return moved
        }
    }

    /// Moves a recipient's envelopes between the local mailbox and the forwarding queues,
    /// inside the caller's transaction, in their order; the mailbox's totals stay (the same
    /// recipient's envelopes, in another queue). Leases go: the holder was delivering to
    /// another queue.
    func move(_ mailbox: Mailbox, to destination: String?, on connection: PostgresConnection) async throws -> Int {
        var changes: [String: QueueTotals] = [:]
        var moved = 0
        let leaving = try await connection.rows("""
            SELECT destination, count(*), sum(size)::int8 FROM forward
            WHERE mailbox = \(mailbox.name) AND destination IS DISTINCT FROM \(destination) GROUP BY destination
            """, logger: logger)
        for try await (name, count, bytes) in leaving.decode((String, Int64, Int64).self) {
            changes[name] = QueueTotals(count: -Int(count), bytes: -Int(bytes))
            moved += Int(count)
        }
        guard let destination else {
            try await connection.rows("""
                WITH moved AS (DELETE FROM forward WHERE mailbox = \(mailbox.name) RETURNING *)
                INSERT INTO envelope (mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body, held)
                SELECT mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body, held FROM moved ORDER BY sequence
                """, logger: logger)
            try await changeUsage(mailboxes: [:], destinations: changes, on: connection)
            return moved
        }
        var arriving = QueueTotals(count: moved, bytes: -changes.values.reduce(0) { $0 + $1.bytes })
        try await connection.rows("""
            UPDATE forward SET destination = \(destination), lease_node = NULL, lease_connection = NULL, lease_expires = NULL
            WHERE mailbox = \(mailbox.name) AND destination <> \(destination)
            """, logger: logger)
        // This relay held them as the recipient's home and now passes them on: one more hop.
        let local = try await connection.rows("""
            WITH moved AS (DELETE FROM envelope WHERE mailbox = \(mailbox.name) RETURNING *),
            added AS (
                INSERT INTO forward (destination, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body, held)
                SELECT \(destination), mailbox, id, precedence, requested_ttl, arrived_at, expires_at, LEAST(hops + 1, 255), size, body, held
                FROM moved ORDER BY sequence RETURNING size)
            SELECT count(*), COALESCE(sum(size), 0)::int8 FROM added
            """, logger: logger)
        for try await (count, bytes) in local.decode((Int64, Int64).self) {
            arriving.count += Int(count)
            arriving.bytes += Int(bytes)
        }
        changes[destination, default: QueueTotals()].count += arriving.count
        changes[destination, default: QueueTotals()].bytes += arriving.bytes
        try await changeUsage(mailboxes: [:], destinations: changes, on: connection)
        return arriving.count
    }

    public func forwardingBacklog(now: UInt64) throws(StoreError) -> [String: ForwardingBacklog] {
        let logger = self.logger
        return try read("read the forwarding backlog") { connection in
            var backlog: [String: ForwardingBacklog] = [:]
            let rows = try await connection.rows(
                "SELECT destination, count(*), sum(size)::int8, min(arrived_at) FROM forward GROUP BY destination", logger: logger)
            for try await (destination, count, bytes, oldest) in rows.decode((String, Int64, Int64, Int64).self) {
                let oldest = UInt64(clamping: oldest)
                backlog[destination] = ForwardingBacklog(count: Int(count), bytes: Int(bytes), oldestAge: now > oldest ? now - oldest : 0)
            }
            return backlog
        }
    }

    public func destinations() throws(StoreError) -> [String] {
        let logger = self.logger
        return try read("list forwarding destinations") { connection in
            var names: [String] = []
            let rows = try await connection.rows("SELECT destination FROM destination_usage WHERE count > 0 ORDER BY destination", logger: logger)
            for try await name in rows.decode(String.self) { names.append(name) }
            return names
        }
    }
}
#endif
