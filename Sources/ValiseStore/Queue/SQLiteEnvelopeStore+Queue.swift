import Foundation
import GRDB

/// The queue's hot path: accepting envelopes (to a mailbox or a forwarding queue),
/// delivering them, and recording acknowledgements, batched by the group-commit writer.
extension SQLiteEnvelopeStore {
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

    /// Writes the whole batch in one transaction: a relay that is taking, delivering and
    /// forwarding pays one fsync for all of it. If that fails (a full disk, say), nothing of
    /// it happened and each part goes again on its own, so that acknowledgements and
    /// completions (which free room) are not held back by the envelopes.
    public func commit(_ batch: CommitBatch, now: UInt64) -> CommitResult {
        let parts = [
            !batch.envelopes.isEmpty, batch.acknowledgements.contains { !$0.ids.isEmpty },
            batch.completions.contains { !$0.isEmpty }, !batch.reroutes.isEmpty,
        ]
        guard parts.count(where: { $0 }) > 1, batch.envelopes.isEmpty || reserve.ensure(reclaim: reclaimFreePages) else {
            return separately(batch, now: now)
        }
        do {
            return try pool.write { db in
                let outcomes = try insert(batch.envelopes, now: now, in: db)
                let deleted = try Self.delete(batch.acknowledgements, now: now, in: db)
                let completed = try Self.complete(batch.completions, now: now, in: db)
                let moved = try batch.reroutes.map { try Self.move($0.mailbox, to: $0.destination, in: db) }
                return CommitResult(accepted: .success(outcomes), acknowledged: .success(deleted), completed: .success(completed), rerouted: .success(moved))
            }
        } catch {
            return separately(batch, now: now)
        }
    }

    /// The envelopes' rows, in a write transaction: dedup by id, quotas, then the envelope
    /// (in its mailbox or its forwarding queue), its remembered id, and the totals.
    func insert(_ envelopes: [IncomingEnvelope], now: UInt64, in db: Database) throws -> [AcceptOutcome] {
        guard !envelopes.isEmpty else { return [] }
        // Prepared once per connection and reused (GRDB's statement cache): compiling
        // SQL for every envelope cost more than executing it. Bound through SQLite's C
        // API (`BoundStatement`): GRDB's argument boxing cost as much again.
        let findMessage = BoundStatement(try db.cachedStatement(sql: "SELECT mailbox, expires_at FROM message WHERE id = ?"), in: db)
        let readUsage = BoundStatement(try db.cachedStatement(sql: "SELECT count, bytes FROM mailbox_usage WHERE mailbox = ?"), in: db)
        let insertEnvelope = BoundStatement(try db.cachedStatement(
            sql: "INSERT INTO envelope (mailbox, id, precedence, arrived_at, expires_at, size, body, requested_ttl, hops) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"), in: db)
        let insertMessage = BoundStatement(try db.cachedStatement(
            sql: "INSERT INTO message (id, mailbox, state, since, expires_at, forget_at) VALUES (?, ?, ?, ?, ?, ?)"), in: db)
        // Each mailbox's and destination's totals are read once per batch and written back once.
        var usage: [String: QueueUsage] = [:]
        var destinations: [String: QueueUsage] = [:]
        var outcomes: [AcceptOutcome] = []
        outcomes.reserveCapacity(envelopes.count)
        for envelope in envelopes {
            let id = envelope.id.bytes
            let mailbox = envelope.mailbox.name
            findMessage.bind(1, id)
            let known = try findMessage.firstRow { (mailbox: $0.text(0), expiresAt: $0.int64(1)) }
            if let known {
                guard let expiresAt = UInt64(exactly: known.expiresAt) else { throw DamagedColumn(column: "message.expires_at") }
                outcomes.append(known.mailbox == mailbox
                    ? .accepted(expiresAt: expiresAt, duplicate: true)
                    : .refused(.idInUse))
                continue
            }
            var totals: QueueUsage
            if let cached = usage[mailbox] {
                totals = cached
            } else {
                readUsage.bind(1, mailbox)
                totals = try readUsage.firstRow { QueueUsage(count: Int($0.int64(0)), bytes: Int($0.int64(1))) }
                    ?? QueueUsage(count: 0, bytes: 0)
            }
            guard totals.count + 1 <= limits.maximumMessagesPerMailbox, totals.bytes + envelope.body.count <= limits.maximumBytesPerMailbox else {
                outcomes.append(.refused(.mailboxFull))
                continue
            }
            let arrival = envelope.arrival(now: now)
            let expires = envelope.expiry(now: now)
            if let destination = envelope.destination {
                var queue = try destinations[destination] ?? Self.destinationUsage(destination, in: db)
                guard queue.count + 1 <= limits.maximumMessagesPerDestination,
                      queue.bytes + envelope.body.count <= limits.maximumBytesPerDestination else {
                    outcomes.append(.refused(.destinationFull))
                    continue
                }
                try Self.insertForward(envelope, to: destination, arrival: arrival, expiry: expires, in: db)
                queue.count += 1
                queue.bytes += envelope.body.count
                queue.added += 1
                queue.addedBytes += envelope.body.count
                destinations[destination] = queue
            } else {
                insertEnvelope.bind(1, mailbox)
                insertEnvelope.bind(2, id)
                insertEnvelope.bind(3, Int64(envelope.precedence.rawValue))
                insertEnvelope.bind(4, Int64(arrival))
                insertEnvelope.bind(5, Int64(expires))
                insertEnvelope.bind(6, Int64(envelope.body.count))
                insertEnvelope.bind(7, envelope.body)
                insertEnvelope.bind(8, Int64(envelope.requestedTTL))
                insertEnvelope.bind(9, Int64(envelope.hops))
                try insertEnvelope.run()
            }
            insertMessage.bind(1, id)
            insertMessage.bind(2, mailbox)
            insertMessage.bind(3, Int64(MessageState.pending.rawValue))
            insertMessage.bind(4, Int64(arrival))
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
        for (destination, totals) in destinations where totals.added > 0 {
            try Self.changeDestinationUsage(destination, count: totals.added, bytes: totals.addedBytes, in: db)
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
                        WHERE mailbox = ? AND expires_at > ? AND held = 0
                        ORDER BY precedence DESC, sequence LIMIT ?
                        """),
                    arguments: [mailbox.name, Int64(now), limit + excluding.count])
                return try Self.window(rows, excluding: excluding, limit: limit) { row, id throws(DamagedColumn) in
                    StoredEnvelope(
                        sequence: try row.value("sequence"), mailbox: mailbox, id: id,
                        precedence: Precedence(rawValue: try row.value("precedence")) ?? .routine,
                        arrivedAt: try row.unsigned("arrived_at", as: UInt64.self), expiresAt: try row.unsigned("expires_at", as: UInt64.self),
                        body: [UInt8](try row.value("body", as: Data.self)), requestedTTL: UInt8(clamping: try row.value("requested_ttl", as: Int64.self)))
                }
            }
        } catch {
            throw Self.storeError(error, doing: "read envelopes in \(path)")
        }
    }

    /// The first `limit` of `rows` (fetched in queue order, `limit` plus as many as are
    /// excluded) whose id is not in `excluding`, each read by `make`.
    static func window<Envelope>(
        _ rows: [Row], excluding: Set<MessageID>, limit: Int, _ make: (Row, MessageID) throws(DamagedColumn) -> Envelope
    ) throws(DamagedColumn) -> [Envelope] {
        var result: [Envelope] = []
        for row in rows {
            guard let id = MessageID(bytes: [UInt8](try row.value("id", as: Data.self))), !excluding.contains(id) else { continue }
            result.append(try make(row, id))
            if result.count == limit { break }
        }
        return result
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
}

/// A mailbox's (or a destination's) totals while a batch is accepted, and what the batch
/// added to them.
struct QueueUsage {
    var count: Int
    var bytes: Int
    var added = 0
    var addedBytes = 0
}
