#if Postgres
import Logging
import NIOCore
import PostgresNIO
public import ValiseStore

/// Fetching a complete blob, counting its fetches and forwards down, expiry and figures.
extension PostgresBlobStore {
    public func blob(id: BlobID, now: UInt64) throws(StoreError) -> BlobRecord? {
        let logger = self.logger
        return try queue.read("read a blob's record") { connection in
            guard let record = try await Self.record(id, locking: false, on: connection, logger: logger),
                  record.complete, record.expiresAt > now else { return nil }
            return record
        }
    }

    public func readBlob(id: BlobID, offset: UInt64, length: Int, now: UInt64) throws(StoreError) -> [UInt8]? {
        let logger = self.logger
        // Far past any blob's end (sizes fit in 63 bits), so that the bounds below cannot overflow.
        let offset = min(offset, UInt64(Int64.max / 4))
        let wanted = min(UInt64(max(length, 0)), UInt64(Int64.max / 4))
        let (low, high) = (Int64(offset) - Int64(Self.rowBytes), Int64(offset + wanted))
        // One statement, one snapshot: the blob's row (so that "not held" and "past its end"
        // differ) and the chunk rows that overlap the range (a row holds at most rowBytes).
        return try queue.read("read a blob") { connection -> [UInt8]? in
            let rows = try await connection.rows("""
                SELECT b.size, c.start, c.data FROM blob b
                LEFT JOIN blob_chunk c ON c.blob = b.id AND c.start > \(low) AND c.start < \(high)
                WHERE b.id = \(id.buffer) AND b.complete AND b.expires_at > \(Int64(clamping: now))
                ORDER BY c.start
                """, logger: logger)
            var held = false
            var size: UInt64 = 0
            var bytes: [UInt8] = []
            for try await (blobSize, start, data) in rows.decode((Int64, Int64?, ByteBuffer?).self) {
                held = true
                size = UInt64(clamping: blobSize)
                guard let start, let data else { continue }
                let rowStart = UInt64(clamping: start)
                let from = max(offset, rowStart)
                let to = min(offset + wanted, rowStart + UInt64(data.readableBytes))
                guard from < to else { continue }
                guard from == offset + UInt64(bytes.count) else { throw StoreError(.corrupt, "the blob's stored parts are not contiguous") }
                bytes += data.readableBytesView.dropFirst(Int(from - rowStart)).prefix(Int(to - from))
            }
            guard held else { return nil }
            let expected = offset >= size ? 0 : min(wanted, size - offset)
            guard UInt64(bytes.count) == expected else { throw StoreError(.corrupt, "the blob's stored parts are missing bytes") }
            return bytes
        }
    }

    public func blobFetched(id: BlobID, now: UInt64) throws(StoreError) -> Bool {
        let logger = self.logger
        return try queue.write("count a blob's fetch") { connection in
            var left: Int32?
            for try await value in try await connection.rows("""
                UPDATE blob SET fetches_left = fetches_left - 1
                WHERE id = \(id.buffer) AND complete AND fetches_left > 0
                RETURNING fetches_left
                """, logger: logger).decode(Int32.self) {
                left = value
            }
            guard left == 0 else { return false }
            return try await Self.deleteIfDone(id, on: connection, logger: logger)
        }
    }

    /// Leases what it returns to this node (`queue.node`) for `forwardLeaseSeconds` plus a
    /// second per MiB, so that another node's link to the same relay leaves those blobs to
    /// this one meanwhile; this node gets them again (a TEMPORARY answer, offered again). A
    /// lease that runs out (a node killed mid-transfer, or a link slower than 1 MiB/s) lets
    /// another node offer the blob too, which is harmless: the destination resumes.
    public func nextBlobForwards(destination: String, excluding: Set<BlobID>, limit: Int, now: UInt64) throws(StoreError) -> [BlobForward] {
        guard limit > 0 else { return [] }
        let (logger, node) = (self.logger, queue.node)
        let now = Int64(clamping: now)
        return try queue.write("lease blobs to forward") { connection in
            let rows = try await connection.rows("""
                WITH picked AS (
                    SELECT f.sequence FROM blob_forward f JOIN blob b ON b.id = f.blob
                    WHERE f.destination = \(destination) AND b.complete AND b.expires_at > \(now)
                        AND b.id <> ALL(\(excluding.map(\.buffer))::bytea[])
                        AND (f.lease_node IS NULL OR f.lease_node = \(node) OR f.lease_until <= \(now))
                    ORDER BY f.sequence LIMIT \(Int64(limit)) FOR UPDATE OF f SKIP LOCKED)
                UPDATE blob_forward f SET lease_node = \(node), lease_until = \(now) + \(Self.forwardLeaseSeconds) + b.size / 1048576
                FROM picked, blob b WHERE f.sequence = picked.sequence AND b.id = f.blob
                RETURNING f.sequence, b.id, b.size, b.expires_at, f.fetches
                """, logger: logger)
            var forwards: [(Int64, BlobForward)] = []
            for try await (sequence, id, size, expiresAt, fetches) in rows.decode((Int64, ByteBuffer, Int64, Int64, Int32).self) {
                guard let id = BlobID(buffer: id) else { continue }
                forwards.append((sequence, BlobForward(
                    id: id, destination: destination, size: UInt64(clamping: size), expiresAt: UInt64(clamping: expiresAt),
                    fetches: UInt32(clamping: fetches))))
            }
            // UPDATE … RETURNING keeps no order: oldest first again.
            return forwards.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    public func completeBlobForward(id: BlobID, destination: String, now: UInt64) throws(StoreError) {
        let logger = self.logger
        try queue.write("complete a blob's forward") { connection in
            // The blob's row first, as blobFetched locks it: whichever of the two finishes
            // last sees the other's change and deletes the blob.
            guard try await Self.record(id, locking: true, on: connection, logger: logger) != nil else { return }
            try await connection.rows(
                "DELETE FROM blob_forward WHERE blob = \(id.buffer) AND destination = \(destination)", logger: logger)
            _ = try await Self.deleteIfDone(id, on: connection, logger: logger)
        }
    }

    /// Deletes the blob (its chunks and forwards with it) when no fetch is left here and no
    /// forward waits; whether it did. The caller holds the blob's row lock.
    private static func deleteIfDone(_ id: BlobID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        var deleted = false
        for try await _ in try await connection.rows("""
            DELETE FROM blob WHERE id = \(id.buffer) AND complete AND fetches_left = 0
                AND NOT EXISTS (SELECT 1 FROM blob_forward WHERE blob = \(id.buffer))
            RETURNING 1
            """, logger: logger).decode(Int32.self) {
            deleted = true
        }
        return deleted
    }

    /// A chunk of blobs per transaction, each holding the queue's sweep lock: a node that
    /// finds another sweeping leaves the job to it and counts nothing.
    public func expireBlobs(now: UInt64) throws(StoreError) -> Int {
        var expired = 0
        while true {
            let deleted = try queue.write("expire blobs") { connection -> Int64? in
                guard try await self.queue.tryLock(PostgresSchema.sweepLock, on: connection) else { return nil }
                var count: Int64 = 0
                for try await value in try await connection.rows("""
                    WITH gone AS (DELETE FROM blob WHERE id IN
                        (SELECT id FROM blob WHERE expires_at <= \(Int64(clamping: now)) LIMIT \(Self.expiryChunk) FOR UPDATE SKIP LOCKED)
                        RETURNING 1)
                    SELECT count(*) FROM gone
                    """, logger: self.logger).decode(Int64.self) {
                    count = value
                }
                return count
            }
            guard let deleted else { return expired }
            expired += Int(deleted)
            if deleted < Self.expiryChunk { return expired }
        }
    }

    public func blobStatistics(now: UInt64) throws(StoreError) -> BlobStatistics {
        let logger = self.logger
        return try queue.read("read the blobs' figures") { connection in
            var statistics = BlobStatistics()
            let now = Int64(clamping: now)
            for try await (count, bytes, waiting) in try await connection.rows("""
                SELECT count(*), COALESCE(sum(size), 0)::int8,
                    (SELECT count(*) FROM blob_forward f JOIN blob b ON b.id = f.blob WHERE b.complete AND b.expires_at > \(now))
                FROM blob WHERE expires_at > \(now)
                """, logger: logger).decode((Int64, Int64, Int64).self) {
                statistics = BlobStatistics(count: Int(count), bytes: UInt64(clamping: bytes), forwardsWaiting: Int(waiting))
            }
            return statistics
        }
    }
}
#endif
