#if Postgres
import NIOCore
import PostgresNIO
import ValiseStore

/// What every part of the queue shares: transactions with their errors in words, ids as
/// `bytea`, and the usage rows that quotas read.
extension PostgresEnvelopeStore {
    /// Runs `body` in one transaction, retried (at most twice) when PostgreSQL aborted it as
    /// a deadlock or a serialisation failure: nothing of it happened, and the nodes take row
    /// locks (usage rows, envelopes in lease) in orders that can cross under load.
    func write<T: Sendable>(
        _ doing: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) throws(StoreError) -> T {
        var attempt = 0
        while true {
            do {
                return try database.withTransaction(body)
            } catch where Self.isConflict(error) && attempt < 2 {
                attempt += 1
            } catch {
                throw StoreError(error.kind, "cannot \(doing): \(error.message)")
            }
        }
    }

    /// Runs `body` on a pooled connection, outside a transaction (one statement's snapshot).
    func read<T: Sendable>(
        _ doing: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) throws(StoreError) -> T {
        do {
            return try database.withConnection(body)
        } catch {
            throw StoreError(error.kind, "cannot \(doing): \(error.message)")
        }
    }

    /// 40P01 deadlock_detected, 40001 serialization_failure (`PostgresDatabase.words` puts the
    /// SQLSTATE in the message).
    static func isConflict(_ error: StoreError) -> Bool {
        error.kind == .failure && (error.message.contains("SQLSTATE 40P01") || error.message.contains("SQLSTATE 40001"))
    }

    // MARK: Usage rows

    /// Locks the usage rows of these mailboxes (or destinations), creating missing ones at
    /// zero, and returns their totals: until the transaction ends no other node can take the
    /// room they show. Locked in name order, as every other writer of them does.
    func lockUsage(_ names: Set<String>, destinations: Bool, on connection: PostgresConnection) async throws -> [String: QueueTotals] {
        guard !names.isEmpty else { return [:] }
        let sorted = names.sorted()
        let rows: PostgresRows
        if destinations {
            rows = try await connection.rows("""
                INSERT INTO destination_usage (destination, count, bytes) SELECT name, 0, 0 FROM unnest(\(sorted)::text[]) AS name ORDER BY name
                ON CONFLICT (destination) DO UPDATE SET count = destination_usage.count RETURNING destination, count, bytes
                """, logger: logger)
        } else {
            rows = try await connection.rows("""
                INSERT INTO mailbox_usage (mailbox, count, bytes) SELECT name, 0, 0 FROM unnest(\(sorted)::text[]) AS name ORDER BY name
                ON CONFLICT (mailbox) DO UPDATE SET count = mailbox_usage.count RETURNING mailbox, count, bytes
                """, logger: logger)
        }
        var totals: [String: QueueTotals] = [:]
        for try await (name, count, bytes) in rows.decode((String, Int64, Int64).self) {
            totals[name] = QueueTotals(count: Int(count), bytes: Int(bytes))
        }
        return totals
    }

    /// Adds to (negative amounts: takes from) mailboxes' and destinations' totals, in name
    /// order. Emptied rows stay (at zero): `occupiedMailboxes` and `destinations` look for
    /// count > 0, and a row that comes and goes with every delivery would only churn.
    func changeUsage(mailboxes: [String: QueueTotals], destinations: [String: QueueTotals], on connection: PostgresConnection) async throws {
        if let (names, counts, bytes) = Self.columns(mailboxes) {
            try await connection.rows("""
                INSERT INTO mailbox_usage (mailbox, count, bytes)
                SELECT * FROM unnest(\(names)::text[], \(counts)::int8[], \(bytes)::int8[]) ORDER BY 1
                ON CONFLICT (mailbox) DO UPDATE SET count = mailbox_usage.count + excluded.count, bytes = mailbox_usage.bytes + excluded.bytes
                """, logger: logger)
        }
        if let (names, counts, bytes) = Self.columns(destinations) {
            try await connection.rows("""
                INSERT INTO destination_usage (destination, count, bytes)
                SELECT * FROM unnest(\(names)::text[], \(counts)::int8[], \(bytes)::int8[]) ORDER BY 1
                ON CONFLICT (destination) DO UPDATE
                SET count = destination_usage.count + excluded.count, bytes = destination_usage.bytes + excluded.bytes
                """, logger: logger)
        }
    }

    /// The non-zero changes as columns (names, counts, bytes) in name order; nil if none.
    private static func columns(_ changes: [String: QueueTotals]) -> ([String], [Int64], [Int64])? {
        let changed = changes.filter { $0.value.count != 0 || $0.value.bytes != 0 }.sorted { $0.key < $1.key }
        guard !changed.isEmpty else { return nil }
        return (changed.map(\.key), changed.map { Int64($0.value.count) }, changed.map { Int64($0.value.bytes) })
    }
}

/// A mailbox's or a destination's totals (count and bytes of its envelopes), or a change to them.
struct QueueTotals: Sendable {
    var count = 0
    var bytes = 0

    mutating func add(_ size: Int) {
        count += 1
        bytes += size
    }

    static prefix func - (totals: QueueTotals) -> QueueTotals {
        QueueTotals(count: -totals.count, bytes: -totals.bytes)
    }
}

extension MessageID {
    /// As a `bytea` binding.
    var buffer: ByteBuffer { ByteBuffer(bytes: bytes) }

    /// From a `bytea` column; nil for anything that is not an id (never stored).
    init?(buffer: ByteBuffer) {
        self.init(bytes: Array(buffer.readableBytesView))
    }
}

extension Sequence<MessageID> {
    /// As a `bytea[]` binding.
    var buffers: [ByteBuffer] { map(\.buffer) }
}
#endif
