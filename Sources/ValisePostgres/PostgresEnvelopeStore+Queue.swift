#if Postgres
import NIOCore
import PostgresNIO
public import ValiseStore

/// The queue's hot path, as `SQLiteEnvelopeStore`'s: accepting envelopes (to a mailbox or a
/// forwarding queue), delivering them and recording acknowledgements, a group commit's batch
/// in one transaction with multi-row statements.
extension PostgresEnvelopeStore: EnvelopeStore {
    public func accept(_ envelopes: [IncomingEnvelope], now: UInt64) throws(StoreError) -> [AcceptOutcome] {
        guard !envelopes.isEmpty else { return [] }
        do {
            return try write("store envelopes") { connection in
                let accepted = try await self.insert(envelopes, now: now, on: connection)
                try await self.announce(mailboxes: accepted.mailboxes, destinations: accepted.destinations, on: connection)
                return accepted.outcomes
            }
        } catch where error.message.contains("SQLSTATE 53100") {
            // The database server's disk is full (disk_full): as SQLite's full disk.
            return envelopes.map { _ in .refused(.storageFull) }
        }
    }

    /// The whole batch in one transaction (one commit, one NOTIFY). If that fails, nothing of
    /// it happened and each part goes again on its own, so that acknowledgements and
    /// completions (which free room) are not held back by the envelopes.
    public func commit(_ batch: CommitBatch, now: UInt64) -> CommitResult {
        let parts = [
            !batch.envelopes.isEmpty, batch.acknowledgements.contains { !$0.ids.isEmpty },
            batch.completions.contains { !$0.isEmpty }, !batch.reroutes.isEmpty,
        ]
        guard parts.count(where: { $0 }) > 1 else { return separately(batch, now: now) }
        do {
            return try write("commit a batch") { connection in
                let accepted = try await self.insert(batch.envelopes, now: now, on: connection)
                let deleted = try await self.delete(batch.acknowledgements, now: now, on: connection)
                let completed = try await self.complete(batch.completions, now: now, on: connection)
                var mailboxes = accepted.mailboxes
                var destinations = accepted.destinations
                var moved: [Int] = []
                for request in batch.reroutes {
                    let count = try await self.move(request.mailbox, to: request.destination, on: connection)
                    moved.append(count)
                    if count > 0 {
                        if let destination = request.destination { destinations.insert(destination) } else { mailboxes.insert(request.mailbox) }
                    }
                }
                try await self.announce(mailboxes: mailboxes, destinations: destinations, on: connection)
                return CommitResult(
                    accepted: .success(accepted.outcomes), acknowledged: .success(deleted), completed: .success(completed),
                    rerouted: .success(moved))
            }
        } catch {
            logger.debug("a batch failed as a whole; its parts go again separately", metadata: ["error": "\(error)"])
            return separately(batch, now: now)
        }
    }

    /// Tells every node (this one too) what became deliverable, delivered at commit.
    func announce(mailboxes: Set<Mailbox>, destinations: Set<String>, on connection: PostgresConnection) async throws {
        try await PostgresAnnouncement.announce(
            PostgresAnnouncement.payload(mailboxes: mailboxes, destinations: destinations), schema: database.configuration.schema,
            on: connection, logger: logger)
    }

    /// What a batch's accepts did, and where envelopes became deliverable.
    struct Inserted: Sendable {
        var outcomes: [AcceptOutcome] = []
        var mailboxes: Set<Mailbox> = []
        var destinations: Set<String> = []
    }

    /// The envelopes' rows, inside the caller's transaction. Quotas first lock the usage
    /// rows (so that two nodes cannot both take the last room); each id is claimed by
    /// inserting its `message` row (the primary key catches a duplicate, committed or being
    /// committed by another node: the insert waits for that node's transaction); then the
    /// claims that do not fit are given back and the envelopes written, all multi-row.
    /// `maximumBytes` is checked against the sum of the mailboxes' totals, which is not
    /// locked: nodes committing at the same moment can pass it by a batch each (locking it
    /// would serialise every node's accepts); it is a bound below the disk, not an exact one.
    func insert(_ envelopes: [IncomingEnvelope], now: UInt64, on connection: PostgresConnection) async throws -> Inserted {
        guard !envelopes.isEmpty else { return Inserted() }
        var mailboxUsage = try await lockUsage(Set(envelopes.map(\.mailbox.name)), destinations: false, on: connection)
        var destinationUsage = try await lockUsage(Set(envelopes.compactMap(\.destination)), destinations: true, on: connection)
        var stored = 0
        if maximumBytes != nil {
            for try await total in try await connection.rows(
                "SELECT COALESCE(sum(bytes), 0)::int8 FROM mailbox_usage", logger: logger).decode(Int64.self) {
                stored = Int(total)
            }
        }

        // Each id's first envelope in the batch claims it, in id order (two batches that
        // share ids then wait for each other without deadlocking).
        var first: [MessageID: Int] = [:]
        for (index, envelope) in envelopes.enumerated() where first[envelope.id] == nil { first[envelope.id] = index }
        let claims = first.values.sorted { envelopes[$0].id.bytes.lexicographicallyPrecedes(envelopes[$1].id.bytes) }
        let claimed = try await claim(claims.map { envelopes[$0] }, now: now, on: connection)
        let conflicts = claims.map { envelopes[$0].id }.filter { !claimed.contains($0) }
        var known: [MessageID: (mailbox: String, expiresAt: UInt64)] = [:]
        if !conflicts.isEmpty {
            let rows = try await connection.rows(
                "SELECT id, mailbox, expires_at FROM message WHERE id = ANY(\(conflicts.buffers)::bytea[])", logger: logger)
            for try await (id, mailbox, expiresAt) in rows.decode((ByteBuffer, String, Int64).self) {
                // Never negative when written; a value that is cannot trap here.
                if let id = MessageID(buffer: id) { known[id] = (mailbox, UInt64(clamping: expiresAt)) }
            }
        }

        var result = Inserted()
        var released: [MessageID] = []
        var local = EnvelopeColumns()
        var forwarded = EnvelopeColumns()
        var added: [String: QueueTotals] = [:]
        var addedDestinations: [String: QueueTotals] = [:]
        // The copy whose outcome stands for each claimed id so far, and claims whose row
        // must be rewritten because a later copy (after a refused first one) took them.
        var standing: [MessageID: Int] = [:]
        var rewrites: [IncomingEnvelope] = []
        for (index, envelope) in envelopes.enumerated() {
            let size = envelope.body.count
            guard claimed.contains(envelope.id) else {
                // Known before (another batch, or another node, committed it): a re-send for
                // the same mailbox keeps the first copy. A row gone meanwhile (forgotten at
                // the end of its retention) is refused as in use too: the sender retries.
                let row = known[envelope.id]
                result.outcomes.append(row?.mailbox == envelope.mailbox.name
                    ? .accepted(expiresAt: row?.expiresAt ?? 0, duplicate: true) : .refused(.idInUse))
                continue
            }
            if let earlier = standing[envelope.id], case .accepted(let expiresAt, _) = result.outcomes[earlier] {
                // Again in the same batch after an accepted copy: a duplicate for the same
                // mailbox, in use for another.
                result.outcomes.append(envelopes[earlier].mailbox == envelope.mailbox
                    ? .accepted(expiresAt: expiresAt, duplicate: true) : .refused(.idInUse))
                continue
            }
            // The id's first copy, or one after refused copies (judged afresh, as one after
            // another in a single batch would be).
            standing[envelope.id] = index
            var totals = mailboxUsage[envelope.mailbox.name] ?? QueueTotals()
            var refusal: StoreRefusal?
            if let maximumBytes, stored + size > maximumBytes {
                refusal = .storageFull
            } else if totals.count + 1 > limits.maximumMessagesPerMailbox || totals.bytes + size > limits.maximumBytesPerMailbox {
                refusal = .mailboxFull
            } else if let destination = envelope.destination {
                let queue = destinationUsage[destination] ?? QueueTotals()
                if queue.count + 1 > limits.maximumMessagesPerDestination || queue.bytes + size > limits.maximumBytesPerDestination {
                    refusal = .destinationFull
                }
            }
            if let refusal {
                if !released.contains(envelope.id) { released.append(envelope.id) }
                result.outcomes.append(.refused(refusal))
                continue
            }
            released.removeAll { $0 == envelope.id }
            if first[envelope.id] != index { rewrites.append(envelope) }
            stored += size
            totals.add(size)
            mailboxUsage[envelope.mailbox.name] = totals
            added[envelope.mailbox.name, default: QueueTotals()].add(size)
            if let destination = envelope.destination {
                destinationUsage[destination, default: QueueTotals()].add(size)
                addedDestinations[destination, default: QueueTotals()].add(size)
                forwarded.append(envelope, now: now)
                result.destinations.insert(destination)
            } else {
                local.append(envelope, now: now)
                result.mailboxes.insert(envelope.mailbox)
            }
            result.outcomes.append(.accepted(expiresAt: envelope.expiry(now: now), duplicate: false))
        }
        if !released.isEmpty {
            try await connection.rows("DELETE FROM message WHERE id = ANY(\(released.buffers)::bytea[])", logger: logger)
        }
        for envelope in rewrites {
            // Claimed with the values of a copy that was refused: this copy's own.
            let (arrival, expiry) = (Int64(envelope.arrival(now: now)), Int64(envelope.expiry(now: now)))
            try await connection.rows("""
                UPDATE message SET mailbox = \(envelope.mailbox.name), since = \(arrival), expires_at = \(expiry),
                    forget_at = \(expiry + Int64(limits.retentionSeconds))
                WHERE id = \(envelope.id.buffer)
                """, logger: logger)
        }
        if !local.ids.isEmpty {
            try await connection.rows("""
                INSERT INTO envelope (mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body)
                SELECT mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body
                FROM unnest(\(local.mailboxes)::text[], \(local.ids)::bytea[], \(local.precedences)::int2[], \(local.requestedTTLs)::int2[],
                    \(local.arrivals)::int8[], \(local.expiries)::int8[], \(local.hops)::int4[], \(local.sizes)::int4[], \(local.bodies)::bytea[])
                    WITH ORDINALITY AS e(mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body, n)
                ORDER BY n
                """, logger: logger)
        }
        if !forwarded.ids.isEmpty {
            try await connection.rows("""
                INSERT INTO forward (destination, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body)
                SELECT destination, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body
                FROM unnest(\(forwarded.destinations)::text[], \(forwarded.mailboxes)::text[], \(forwarded.ids)::bytea[],
                    \(forwarded.precedences)::int2[], \(forwarded.requestedTTLs)::int2[], \(forwarded.arrivals)::int8[],
                    \(forwarded.expiries)::int8[], \(forwarded.hops)::int4[], \(forwarded.sizes)::int4[], \(forwarded.bodies)::bytea[])
                    WITH ORDINALITY AS e(destination, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body, n)
                ORDER BY n
                """, logger: logger)
        }
        try await changeUsage(mailboxes: added, destinations: addedDestinations, on: connection)
        return result
    }

    /// Inserts the `message` rows of these envelopes (pending) where their ids are new;
    /// returns the ids inserted.
    private func claim(_ envelopes: [IncomingEnvelope], now: UInt64, on connection: PostgresConnection) async throws -> Set<MessageID> {
        let ids = envelopes.map(\.id.buffer)
        let mailboxes = envelopes.map(\.mailbox.name)
        let since = envelopes.map { Int64($0.arrival(now: now)) }
        let expiries = envelopes.map { Int64($0.expiry(now: now)) }
        let forget = envelopes.map { Int64($0.expiry(now: now) + limits.retentionSeconds) }
        let rows = try await connection.rows("""
            INSERT INTO message (id, mailbox, state, since, expires_at, forget_at)
            SELECT id, mailbox, \(Int16(MessageState.pending.rawValue)), since, expires_at, forget_at
            FROM unnest(\(ids)::bytea[], \(mailboxes)::text[], \(since)::int8[], \(expiries)::int8[], \(forget)::int8[])
                WITH ORDINALITY AS m(id, mailbox, since, expires_at, forget_at, n)
            ORDER BY n
            ON CONFLICT (id) DO NOTHING RETURNING id
            """, logger: logger)
        var claimed = Set<MessageID>()
        for try await id in rows.decode(ByteBuffer.self) {
            if let id = MessageID(buffer: id) { claimed.insert(id) }
        }
        return claimed
    }

    public func nextForDelivery(mailbox: Mailbox, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [StoredEnvelope] {
        guard limit > 0 else { return [] }
        let logger = self.logger
        return try read("read envelopes") { connection in
            let rows = try await connection.rows("""
                SELECT sequence, id, precedence, arrived_at, expires_at, body, requested_ttl FROM envelope
                WHERE mailbox = \(mailbox.name) AND expires_at > \(Int64(clamping: now)) AND NOT held AND id <> ALL(\(excluding.buffers)::bytea[])
                ORDER BY precedence DESC, sequence LIMIT \(Int64(limit))
                """, logger: logger)
            return try await Self.storedEnvelopes(rows, mailbox: mailbox)
        }
    }

    /// Rows of `sequence, id, precedence, arrived_at, expires_at, body, requested_ttl`.
    static func storedEnvelopes(_ rows: PostgresRows, mailbox: Mailbox) async throws -> [StoredEnvelope] {
        var envelopes: [StoredEnvelope] = []
        for try await (sequence, id, precedence, arrived, expires, body, requestedTTL)
            in rows.decode((Int64, ByteBuffer, Int, Int64, Int64, ByteBuffer, Int).self) {
            guard let id = MessageID(buffer: id) else { continue }
            envelopes.append(StoredEnvelope(
                sequence: sequence, mailbox: mailbox, id: id, precedence: Precedence(rawValue: precedence) ?? .routine,
                arrivedAt: UInt64(clamping: arrived), expiresAt: UInt64(clamping: expires), body: Array(body.readableBytesView),
                requestedTTL: UInt8(clamping: requestedTTL)))
        }
        return envelopes
    }

    public func acknowledge(_ requests: [AcknowledgeRequest], now: UInt64) throws(StoreError) -> [Int] {
        guard requests.contains(where: { !$0.ids.isEmpty }) else { return requests.map { _ in 0 } }
        return try write("record acknowledgements") { connection in try await self.delete(requests, now: now, on: connection) }
    }

    /// Acknowledged envelopes deleted (whoever holds their lease) and remembered as
    /// delivered, inside the caller's transaction; per request, how many it deleted (an id
    /// acknowledged twice counts for the first request only).
    func delete(_ requests: [AcknowledgeRequest], now: UInt64, on connection: PostgresConnection) async throws -> [Int] {
        var seen = Set<[UInt8]>()
        var mailboxes: [String] = []
        var ids: [ByteBuffer] = []
        var owners: [Int32] = []
        for (index, request) in requests.enumerated() {
            for id in request.ids where seen.insert(Array(request.mailbox.name.utf8) + [0] + id.bytes).inserted {
                mailboxes.append(request.mailbox.name)
                ids.append(id.buffer)
                owners.append(Int32(index))
            }
        }
        var deleted = requests.map { _ in 0 }
        guard !ids.isEmpty else { return deleted }
        // Delivered just before its expiry and swept before the ack came: the recipient has
        // it, so the status must not say undelivered (the second UPDATE).
        let rows = try await connection.rows("""
            WITH gone AS (
                DELETE FROM envelope e USING unnest(\(mailboxes)::text[], \(ids)::bytea[], \(owners)::int4[]) AS a(mailbox, id, owner)
                WHERE e.id = a.id AND e.mailbox = a.mailbox RETURNING a.owner, e.id, e.mailbox, e.size),
            delivered AS (
                UPDATE message m SET state = \(Int16(MessageState.delivered.rawValue)), since = \(Int64(clamping: now))
                FROM gone WHERE m.id = gone.id),
            late AS (
                UPDATE message m SET state = \(Int16(MessageState.delivered.rawValue)), since = \(Int64(clamping: now))
                FROM unnest(\(mailboxes)::text[], \(ids)::bytea[]) AS a(mailbox, id)
                WHERE m.id = a.id AND m.mailbox = a.mailbox AND m.state = \(Int16(MessageState.expiredUndelivered.rawValue))
                    AND a.id NOT IN (SELECT id FROM gone))
            SELECT owner, mailbox, size FROM gone
            """, logger: logger)
        var freed: [String: QueueTotals] = [:]
        for try await (owner, mailbox, size) in rows.decode((Int32, String, Int32).self) {
            deleted[Int(owner)] += 1
            freed[mailbox, default: QueueTotals()].add(Int(size))
        }
        try await changeUsage(mailboxes: freed.mapValues { -$0 }, destinations: [:], on: connection)
        return deleted
    }
}

/// A batch's envelopes for one table, column by column: the arrays of one multi-row
/// `INSERT … SELECT FROM unnest(…)`.
struct EnvelopeColumns {
    var destinations: [String] = []
    var mailboxes: [String] = []
    var ids: [ByteBuffer] = []
    var precedences: [Int16] = []
    var requestedTTLs: [Int16] = []
    var arrivals: [Int64] = []
    var expiries: [Int64] = []
    var hops: [Int32] = []
    var sizes: [Int32] = []
    var bodies: [ByteBuffer] = []

    mutating func append(_ envelope: IncomingEnvelope, now: UInt64) {
        destinations.append(envelope.destination ?? "")
        mailboxes.append(envelope.mailbox.name)
        ids.append(envelope.id.buffer)
        precedences.append(Int16(envelope.precedence.rawValue))
        requestedTTLs.append(Int16(envelope.requestedTTL))
        arrivals.append(Int64(clamping: envelope.arrival(now: now)))
        expiries.append(Int64(clamping: envelope.expiry(now: now)))
        hops.append(Int32(envelope.hops))
        sizes.append(Int32(clamping: envelope.body.count))
        bodies.append(ByteBuffer(bytes: envelope.body))
    }
}
#endif
