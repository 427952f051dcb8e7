#if Postgres
import NIOCore
import PostgresNIO
public import ValiseStore

/// Leases: an envelope in delivery (or in a relay link's flight) names the node and the
/// connection that sends it until `lease_expires`, so that two nodes never send it at once
/// and nothing overtakes an envelope of higher precedence being sent elsewhere.
extension PostgresEnvelopeStore: SharedQueue {
    public func leaseForDelivery(
        mailbox: Mailbox, holder: LeaseHolder, excluding: Set<MessageID>, limit: Int, now: UInt64
    ) throws(StoreError) -> [StoredEnvelope] {
        let name = mailbox.name
        return try lease(
            "lease envelopes", holder: holder, excluding: excluding, limit: limit, now: now,
            // The candidates in delivery order, locked (a node leasing the same mailbox at
            // the same moment waits for this transaction, then sees its leases).
            candidates: { count in """
                SELECT sequence, id, lease_node, lease_connection, lease_expires FROM envelope
                WHERE mailbox = \(name) AND expires_at > \(Int64(clamping: now)) AND NOT held
                ORDER BY precedence DESC, sequence LIMIT \(count) FOR UPDATE
                """ },
            take: { chosen, expires in """
                UPDATE envelope SET lease_node = \(holder.node), lease_connection = \(Int64(bitPattern: holder.connection)),
                    lease_expires = \(expires)
                WHERE sequence = ANY(\(chosen)::int8[])
                RETURNING sequence, id, precedence, arrived_at, expires_at, body, requested_ttl
                """ },
            read: { rows in try await Self.storedEnvelopes(rows, mailbox: mailbox).sorted { ($0.precedence, -$0.sequence) > ($1.precedence, -$1.sequence) } })
    }

    public func leaseForForwarding(
        destination: String, holder: LeaseHolder, excluding: Set<MessageID>, limit: Int, now: UInt64
    ) throws(StoreError) -> [OutgoingEnvelope] {
        try lease(
            "lease envelopes to forward", holder: holder, excluding: excluding, limit: limit, now: now,
            candidates: { count in """
                SELECT sequence, id, lease_node, lease_connection, lease_expires FROM forward
                WHERE destination = \(destination) AND expires_at > \(Int64(clamping: now)) AND NOT held
                ORDER BY precedence DESC, sequence LIMIT \(count) FOR UPDATE
                """ },
            take: { chosen, expires in """
                UPDATE forward SET lease_node = \(holder.node), lease_connection = \(Int64(bitPattern: holder.connection)),
                    lease_expires = \(expires)
                WHERE sequence = ANY(\(chosen)::int8[])
                RETURNING sequence, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, body
                """ },
            read: { rows in
                try await Self.outgoingEnvelopes(rows, destination: destination).sorted { ($0.precedence, -$0.sequence) > ($1.precedence, -$1.sequence) }
            })
    }

    /// One lease transaction: `candidates` (given how many rows) selects and locks rows in
    /// delivery order; those `leasable` picks are leased by `take` (given their sequences and
    /// the lease's expiry), whose rows `read` turns into envelopes in delivery order.
    private func lease<Envelope: Sendable>(
        _ doing: String, holder: LeaseHolder, excluding: Set<MessageID>, limit: Int, now: UInt64,
        candidates: @escaping @Sendable (Int64) -> PostgresQuery, take: @escaping @Sendable ([Int64], Int64) -> PostgresQuery,
        read: @escaping @Sendable (PostgresRows) async throws -> [Envelope]
    ) throws(StoreError) -> [Envelope] {
        guard limit > 0 else { return [] }
        return try write(doing) { connection in
            let rows = try await connection.rows(candidates(Int64(limit + excluding.count)), logger: self.logger)
            let chosen = try await Self.leasable(rows, holder: holder, excluding: excluding, limit: limit, now: now)
            guard !chosen.isEmpty else { return [] }
            let expires = Int64(clamping: now + SharedQueueLease.seconds)
            return try await read(try await connection.rows(take(chosen, expires), logger: self.logger))
        }
    }

    /// The sequences to lease among candidates in delivery order: up to `limit`, leaving out
    /// `excluding`, stopping at the first leased to another holder and not expired.
    static func leasable(
        _ rows: PostgresRows, holder: LeaseHolder, excluding: Set<MessageID>, limit: Int, now: UInt64
    ) async throws -> [Int64] {
        var chosen: [Int64] = []
        for try await (sequence, id, node, connection, expires) in rows.decode((Int64, ByteBuffer, String?, Int64?, Int64?).self) {
            if let node, let connection, let expires, UInt64(clamping: expires) > now,
               node != holder.node || UInt64(bitPattern: connection) != holder.connection {
                break
            }
            guard let id = MessageID(buffer: id), !excluding.contains(id) else { continue }
            chosen.append(sequence)
            if chosen.count == limit { break }
        }
        return chosen
    }

    public func releaseLeases(of holder: LeaseHolder) throws(StoreError) {
        try write("release leases") { connection in
            let logger = self.logger
            let node = holder.node
            let id = Int64(bitPattern: holder.connection)
            try await connection.rows("""
                UPDATE envelope SET lease_node = NULL, lease_connection = NULL, lease_expires = NULL
                WHERE lease_node = \(node) AND lease_connection = \(id)
                """, logger: logger)
            try await connection.rows("""
                UPDATE forward SET lease_node = NULL, lease_connection = NULL, lease_expires = NULL
                WHERE lease_node = \(node) AND lease_connection = \(id)
                """, logger: logger)
        }
    }

    public func renewLeases(of connections: [UInt64], now: UInt64) throws(StoreError) {
        let ids = connections.map { Int64(bitPattern: $0) }
        try write("renew leases") { connection in
            let logger = self.logger
            let expires = Int64(clamping: now + SharedQueueLease.seconds)
            try await connection.rows("""
                UPDATE envelope SET lease_expires = \(expires) WHERE lease_node = \(self.node) AND lease_connection = ANY(\(ids))
                """, logger: logger)
            try await connection.rows("""
                UPDATE forward SET lease_expires = \(expires) WHERE lease_node = \(self.node) AND lease_connection = ANY(\(ids))
                """, logger: logger)
        }
    }

    /// Every stream shares this store's one LISTEN connection (`PostgresListener`).
    public func changes() -> AsyncStream<QueueChange> {
        listener.subscribe()
    }
}
#endif
