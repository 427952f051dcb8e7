#if Postgres
import Logging
import NIOCore
import PostgresNIO
public import ValiseStore

/// Bounds on the directory log the nodes share.
public enum SharedDirectoryLimits {
    /// An entry's canonical bytes at most: ValiseDirectory's `DirectoryEntry` is a 54-byte
    /// header, a body of at most 16 KiB and at most 32 signatures of 96 bytes with their
    /// count (19,511 bytes); real entries are a few hundred bytes. Larger is refused.
    public static let maximumEntryByteCount = 20 * 1024
    /// Entries one read or one append carries at most (20 MiB at the very worst).
    public static let maximumEntriesPerCall = 1_000
}

/// The directory log in table `directory_entry` (position 0 is genesis). Each node verifies
/// what it reads before applying it; the store only keeps the log gapless and append-only.
extension PostgresEnvelopeStore: SharedDirectoryLog {
    public func directoryEntries(from start: Int, limit: Int) throws(StoreError) -> [[UInt8]] {
        guard start >= 0 else { throw StoreError(.failure, "cannot read the directory log from position \(start): positions start at 0") }
        let limit = min(limit, SharedDirectoryLimits.maximumEntriesPerCall)
        guard limit > 0 else { return [] }
        return try database.withConnection { [logger = self.logger] connection in
            let rows = try await connection.rows(
                """
                SELECT position, entry FROM directory_entry WHERE position >= \(Int64(start)) ORDER BY position LIMIT \(Int64(limit))
                """, logger: logger)
            var entries: [[UInt8]] = []
            for try await (position, entry) in rows.decode((Int64, ByteBuffer).self) {
                // Stored gapless; a gap (or an oversized entry) would be another writer's doing:
                // stop there rather than hand out entries out of place.
                guard position == Int64(start + entries.count), entry.readableBytes <= SharedDirectoryLimits.maximumEntryByteCount else {
                    throw StoreError(.corrupt, "the shared directory log has no valid entry at position \(start + entries.count)")
                }
                entries.append(Array(entry.readableBytesView))
            }
            return entries
        }
    }

    public func appendDirectoryEntries(_ entries: [[UInt8]], from start: Int) throws(StoreError) -> Int {
        guard !entries.isEmpty else { return 0 }
        guard start >= 0, start <= Int.max - entries.count else {
            throw StoreError(.failure, "cannot append to the directory log at position \(start)")
        }
        guard entries.count <= SharedDirectoryLimits.maximumEntriesPerCall else {
            throw StoreError(.failure, "cannot append \(entries.count) directory entries at once (at most \(SharedDirectoryLimits.maximumEntriesPerCall))")
        }
        if let index = entries.firstIndex(where: { $0.isEmpty || $0.count > SharedDirectoryLimits.maximumEntryByteCount }) {
            throw StoreError(.failure, """
                directory entry \(start + index) is \(entries[index].count) bytes: \
                an entry is 1 to \(SharedDirectoryLimits.maximumEntryByteCount) bytes
                """)
        }
        let positions = entries.indices.map { Int64(start + $0) }
        let bytes = entries.map { ByteBuffer(bytes: $0) }
        return try database.withTransaction { [logger = self.logger] connection in
            // Rows are never deleted, so positions run from 0 to count - 1 and the next is
            // MAX + 1. A concurrent append that this snapshot misses can only make the gap
            // look larger: it may refuse wrongly (the caller tries again), never leave a hole.
            var next: Int64 = 0
            for try await value in try await connection.rows(
                "SELECT coalesce(max(position) + 1, 0) FROM directory_entry", logger: logger
            ).decode(Int64.self) { next = value }
            guard Int64(start) <= next else {
                throw StoreError(.failure, "cannot append directory entries from position \(start): the shared log has only \(next)")
            }
            // Positions already stored stay as they are (every node verified what it stored);
            // ON CONFLICT waits for a concurrent insert of the same position, then skips it.
            var added = 0
            for try await _ in try await connection.rows(
                """
                INSERT INTO directory_entry (position, entry) SELECT position, entry FROM unnest(\(positions), \(bytes)) AS incoming(position, entry)
                ON CONFLICT (position) DO NOTHING RETURNING position
                """, logger: logger
            ).decode(Int64.self) { added += 1 }
            if added > 0 {
                let payload = PostgresAnnouncement.payload(mailboxes: [Mailbox](), destinations: [String](), directory: true)
                try await PostgresAnnouncement.announce(payload, schema: self.database.configuration.schema, on: connection, logger: logger)
            }
            return added
        }
    }
}
#endif
