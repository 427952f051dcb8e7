#if Postgres
import Logging
import NIOCore
import PostgresNIO
import ValiseCrypto
public import ValiseStore

/// The relay's attachment blobs in PostgreSQL, in tables of their own (migration 2) beside the
/// queue that `PostgresEnvelopeStore` keeps, on its database: the same pool, schema, sweep
/// lock and announcements. A class apart from the queue, as SQLite keeps blobs in a file
/// apart: the relay takes its `BlobStore` separately, and nothing here touches the envelopes'
/// rows or totals, so text envelopes are never refused because of blobs.
///
/// Several nodes share it. An append locks the blob's row (`SELECT … FOR UPDATE`), so that
/// parts of one blob received by two nodes (a client that failed over mid-upload) are
/// appended in turn, each at the committed offset, and a part sent twice is stored once.
/// A forward is leased to the node whose link takes it (`nextBlobForwards`), so that the
/// nodes' links to one relay do not all send the same blob; a lease that runs out lets
/// another node offer it too, which is harmless (the destination resumes from what it
/// committed, or answers COMPLETE).
public final class PostgresBlobStore: BlobStore {
    /// The queue whose database (and schema, migrated by it) holds the blobs.
    public let queue: PostgresEnvelopeStore

    /// The most bytes one `blob_chunk` row holds (the relay protocol's wire chunk).
    static let rowBytes = 262_144
    /// Rows read per query when hashing a whole blob: 4 MiB at a time, never the blob.
    static let hashBatchRows: Int64 = 16
    /// How long a node's link holds a blob's forward, plus a second per MiB of the blob.
    static let forwardLeaseSeconds: Int64 = 60
    /// Blobs one expiry transaction deletes, at most (each with up to 4,096 chunk rows).
    static let expiryChunk: Int64 = 8

    public init(queue: PostgresEnvelopeStore) {
        self.queue = queue
    }

    var logger: Logger { queue.logger }

    // MARK: Upload

    public func beginBlob(_ declaration: BlobDeclaration, maximumTotalBytes: UInt64, now: UInt64) throws(StoreError) -> BlobRecord {
        guard declaration.size > 0, declaration.size <= UInt64(Int64.max) else {
            throw StoreError(.failure, "cannot declare a blob: its size must be at least 1 byte")
        }
        let logger = self.logger
        let lock = queue.advisoryKey(PostgresSchema.blobQuotaLock)
        return try queue.write("declare a blob") { connection in
            let id = declaration.id.buffer
            let now = Int64(clamping: now)
            // Declarations in turn: the sum read below stays true until this one commits.
            try await connection.rows("SELECT pg_advisory_xact_lock(hashtextextended(\(lock), 0))", logger: logger)
            if let held = try await Self.record(declaration.id, locking: true, on: connection, logger: logger) {
                if held.expiresAt > UInt64(now) {
                    guard held.size == declaration.size else {
                        throw StoreError(.failure, "cannot declare a blob: it is held with another size")
                    }
                    return held
                }
                // Expired but not yet swept: gone for every purpose, so declared afresh.
                try await connection.rows("DELETE FROM blob WHERE id = \(id)", logger: logger)
            }
            var total: Int64 = 0
            for try await sum in try await connection.rows(
                "SELECT COALESCE(sum(size), 0)::int8 FROM blob WHERE expires_at > \(now)", logger: logger).decode(Int64.self) {
                total = sum
            }
            guard let held = UInt64(exactly: total) else { throw StoreError(.corrupt, "the blobs' stored sizes add up to a negative number") }
            if held + declaration.size > maximumTotalBytes {
                throw StoreError(.limitReached, "the relay's blobs would take more than \(maximumTotalBytes) bytes")
            }
            try await connection.rows("""
                INSERT INTO blob (id, size, committed, complete, expires_at, fetches_left)
                VALUES (\(id), \(Int64(declaration.size)), 0, false, \(Int64(clamping: declaration.expiresAt)), \(Int32(clamping: declaration.fetches)))
                """, logger: logger)
            // A destination where nobody fetches needs no copy.
            let forwards = declaration.forwards.filter { $0.value > 0 }.sorted { $0.key < $1.key }
            if !forwards.isEmpty {
                try await connection.rows("""
                    INSERT INTO blob_forward (blob, destination, fetches)
                    SELECT \(id), * FROM unnest(\(forwards.map(\.key))::text[], \(forwards.map { Int32(clamping: $0.value) })::int4[])
                    """, logger: logger)
            }
            return BlobRecord(
                id: declaration.id, size: declaration.size, committed: 0, complete: false, expiresAt: declaration.expiresAt,
                fetchesLeft: declaration.fetches)
        }
    }

    public func appendBlob(id: BlobID, offset: UInt64, bytes: [UInt8], now: UInt64) throws(StoreError) -> BlobRecord {
        let logger = self.logger
        let schema = queue.database.configuration.schema
        let outcome = try queue.write("store a part of a blob") { connection -> Appended in
            guard let held = try await Self.record(id, locking: true, on: connection, logger: logger), held.expiresAt > now else {
                throw StoreError(.failure, "no such blob (unknown or expired)")
            }
            let end = offset.addingReportingOverflow(UInt64(bytes.count))
            guard !end.overflow, end.partialValue <= held.size else {
                throw StoreError(.failure, "the part goes past the blob's declared size")
            }
            guard offset <= held.committed else {
                throw StoreError(.failure, "the part starts at \(offset), after the \(held.committed) bytes committed")
            }
            // Bytes already committed (a part sent twice, or by two nodes) are skipped.
            let skip = Int(held.committed - offset)
            guard !held.complete, skip < bytes.count else { return .stored(held) }
            try await Self.insertRows(id, from: held.committed, bytes: bytes[skip...], on: connection, logger: logger)
            let committed = held.committed + UInt64(bytes.count - skip)
            guard committed == held.size else {
                try await connection.rows("UPDATE blob SET committed = \(Int64(committed)) WHERE id = \(id.buffer)", logger: logger)
                return .stored(held.with(committed: committed, complete: false))
            }
            guard try await Self.hash(of: id, on: connection, logger: logger) == id.bytes else {
                // Committed as the transaction's outcome: the bytes are worthless, the id is free again.
                try await connection.rows("DELETE FROM blob WHERE id = \(id.buffer)", logger: logger)
                return .mismatch
            }
            try await connection.rows(
                "UPDATE blob SET committed = size, complete = true WHERE id = \(id.buffer)", logger: logger)
            // Other nodes' relay links to these relays look for work (their blob lanes too).
            var destinations: [String] = []
            for try await name in try await connection.rows(
                "SELECT destination FROM blob_forward WHERE blob = \(id.buffer)", logger: logger).decode(String.self) {
                destinations.append(name)
            }
            try await PostgresAnnouncement.announce(
                PostgresAnnouncement.payload(mailboxes: [], destinations: destinations), schema: schema, on: connection, logger: logger)
            return .stored(held.with(committed: committed, complete: true))
        }
        switch outcome {
        case .stored(let record):
            return record
        case .mismatch:
            throw StoreError(.corrupt, "the blob's bytes do not hash to its id; it was deleted")
        }
    }

    /// What an append transaction committed.
    private enum Appended: Sendable {
        case stored(BlobRecord)
        case mismatch
    }

    /// Writes `bytes` as chunk rows from `start`, each at most `rowBytes`, in one statement.
    private static func insertRows(
        _ id: BlobID, from start: UInt64, bytes: ArraySlice<UInt8>, on connection: PostgresConnection, logger: Logger
    ) async throws {
        var starts: [Int64] = []
        var rows: [ByteBuffer] = []
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let end = min(index + rowBytes, bytes.endIndex)
            starts.append(Int64(start) + Int64(index - bytes.startIndex))
            rows.append(ByteBuffer(bytes: bytes[index..<end]))
            index = end
        }
        try await connection.rows("""
            INSERT INTO blob_chunk (blob, start, data) SELECT \(id.buffer), * FROM unnest(\(starts)::int8[], \(rows)::bytea[])
            """, logger: logger)
    }

    /// BLAKE2b-256 of the blob's committed bytes, read in batches of rows in order.
    private static func hash(of id: BlobID, on connection: PostgresConnection, logger: Logger) async throws -> [UInt8] {
        var hasher = BLAKE2b.Hasher(outputByteCount: BlobID.byteCount)
        var next: Int64 = 0
        while true {
            var rows: Int64 = 0
            let batch = try await connection.rows("""
                SELECT start, data FROM blob_chunk WHERE blob = \(id.buffer) AND start >= \(next) ORDER BY start LIMIT \(hashBatchRows)
                """, logger: logger)
            for try await (start, data) in batch.decode((Int64, ByteBuffer).self) {
                // Rows are contiguous by construction; a gap would be a damaged table.
                guard start == next else { throw StoreError(.corrupt, "the blob's stored parts are not contiguous") }
                hasher.update(Array(data.readableBytesView))
                next = start + Int64(data.readableBytes)
                rows += 1
            }
            if rows < hashBatchRows { return hasher.finalize() }
        }
    }

    /// The blob's row (expired or not), locked for this transaction when `locking`.
    static func record(_ id: BlobID, locking: Bool, on connection: PostgresConnection, logger: Logger) async throws -> BlobRecord? {
        let rows = try await connection.rows("""
            SELECT size, committed, complete, expires_at, fetches_left FROM blob WHERE id = \(id.buffer)
            \(unescaped: locking ? "FOR UPDATE" : "")
            """, logger: logger)
        for try await (size, committed, complete, expiresAt, fetchesLeft) in rows.decode((Int64, Int64, Bool, Int64, Int32).self) {
            return BlobRecord(
                id: id, size: UInt64(clamping: size), committed: UInt64(clamping: committed), complete: complete,
                expiresAt: UInt64(clamping: expiresAt), fetchesLeft: UInt32(clamping: fetchesLeft))
        }
        return nil
    }
}

extension BlobRecord {
    func with(committed: UInt64, complete: Bool) -> BlobRecord {
        BlobRecord(id: id, size: size, committed: committed, complete: complete, expiresAt: expiresAt, fetchesLeft: fetchesLeft)
    }
}

extension BlobID {
    /// As a `bytea` binding.
    var buffer: ByteBuffer { ByteBuffer(bytes: bytes) }

    /// From a `bytea` column; nil for anything that is not an id (never stored).
    init?(buffer: ByteBuffer) {
        self.init(bytes: Array(buffer.readableBytesView))
    }
}
#endif
