import Foundation
import GRDB

/// The BlobStore contract on SQLite: each method one transaction.
extension SQLiteBlobStore {
    public func beginBlob(_ declaration: BlobDeclaration, maximumTotalBytes: UInt64, now: UInt64) throws(StoreError) -> BlobRecord {
        let id = declaration.id
        guard declaration.size >= 1, declaration.size <= UInt64(Int64.max) else {
            throw StoreError(.failure, "blob \(id): a size of \(declaration.size) bytes is out of bounds")
        }
        return try write("declare a blob") { db in
            if let held = try Self.held(db, id) {
                if held.record.expiresAt > now {
                    guard held.record.size == declaration.size else {
                        throw StoreError(.failure, "blob \(id) is held with another size (\(held.record.size) bytes, not \(declaration.size))")
                    }
                    return held.record
                }
                // Expired and not swept yet: as good as gone, so the id starts afresh.
                try Self.delete(db, sequence: held.sequence)
            }
            let stored = try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM blob WHERE expires_at > ?", arguments: [Int64(clamping: now)]) ?? 0
            guard let total = UInt64(exactly: stored) else { throw DamagedColumn(column: "blob.size") }
            guard total + declaration.size <= maximumTotalBytes else {
                throw StoreError(.limitReached, "the relay's blobs would take more than \(maximumTotalBytes) bytes")
            }
            try db.execute(
                sql: "INSERT INTO blob (id, size, committed, complete, expires_at, fetches_left) VALUES (?, ?, 0, 0, ?, ?)",
                arguments: [id.bytes.databaseBlob, Int64(declaration.size), Int64(clamping: declaration.expiresAt), Int64(declaration.fetches)])
            let sequence = db.lastInsertedRowID
            for (destination, fetches) in declaration.forwards.sorted(by: { $0.key < $1.key }) where fetches > 0 {
                try db.execute(
                    sql: "INSERT INTO blob_forward (blob, destination, fetches) VALUES (?, ?, ?)",
                    arguments: [sequence, destination, Int64(fetches)])
            }
            return BlobRecord(
                id: id, size: declaration.size, committed: 0, complete: false, expiresAt: declaration.expiresAt, fetchesLeft: declaration.fetches)
        }
    }

    /// What an append found: the record after it, or a blob whose bytes did not match.
    private enum Appended {
        case record(BlobRecord)
        case mismatch
    }

    public func appendBlob(id: BlobID, offset: UInt64, bytes: [UInt8], now: UInt64) throws(StoreError) -> BlobRecord {
        let outcome: Appended = try write("store a blob's bytes") { db in
            guard let held = try Self.held(db, id), held.record.expiresAt > now else {
                throw StoreError(.failure, "blob \(id) is not held (never declared, deleted or expired)")
            }
            let record = held.record
            // Checked without adding first: an offset near 2^64 must not overflow.
            guard offset <= record.size, UInt64(bytes.count) <= record.size - offset else {
                throw StoreError(.failure, "blob \(id): \(bytes.count) bytes at \(offset) go past its size of \(record.size)")
            }
            let end = offset + UInt64(bytes.count)
            guard offset <= record.committed else {
                throw StoreError(.failure, "blob \(id): bytes at \(offset) would leave a gap after the \(record.committed) committed")
            }
            // A part sent twice: what is below the committed length is already stored.
            guard !record.complete, end > record.committed else { return .record(record) }
            var position = Int(record.committed - offset)
            var at = record.committed
            while position < bytes.count {
                let next = min(position + Self.rowBytes, bytes.count)
                try db.execute(
                    sql: "INSERT INTO blob_chunk (blob, offset, data) VALUES (?, ?, ?)",
                    arguments: [held.sequence, Int64(at), Data(bytes[position..<next])])
                at += UInt64(next - position)
                position = next
            }
            guard end == record.size else {
                try db.execute(sql: "UPDATE blob SET committed = ? WHERE sequence = ?", arguments: [Int64(end), held.sequence])
                return .record(BlobRecord(
                    id: id, size: record.size, committed: end, complete: false, expiresAt: record.expiresAt, fetchesLeft: record.fetchesLeft))
            }
            // The last byte is in: the blob is complete only if it hashes to its id, checked
            // in this transaction, so that an incomplete or wrong blob is never served.
            guard try Self.hash(db, sequence: held.sequence) == id.bytes else {
                try Self.delete(db, sequence: held.sequence)
                return .mismatch
            }
            try db.execute(sql: "UPDATE blob SET committed = ?, complete = 1 WHERE sequence = ?", arguments: [Int64(end), held.sequence])
            return .record(BlobRecord(
                id: id, size: record.size, committed: end, complete: true, expiresAt: record.expiresAt, fetchesLeft: record.fetchesLeft))
        }
        switch outcome {
        case .record(let record): return record
        case .mismatch: throw StoreError(.corrupt, "blob \(id): its bytes do not hash to its id; it was deleted")
        }
    }

    public func blob(id: BlobID, now: UInt64) throws(StoreError) -> BlobRecord? {
        try read("read a blob") { db in
            guard let record = try Self.held(db, id)?.record, record.complete, record.expiresAt > now else { return nil }
            return record
        }
    }

    public func readBlob(id: BlobID, offset: UInt64, length: Int, now: UInt64) throws(StoreError) -> [UInt8]? {
        try read("read a blob's bytes") { db in
            guard let held = try Self.held(db, id), held.record.complete, held.record.expiresAt > now else { return nil }
            guard offset < held.record.size, length > 0 else { return [] }
            let end = offset + min(UInt64(length), held.record.size - offset)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(end - offset))
            // Rows are at most rowBytes long, so every row that overlaps starts after this.
            let rows = try Row.fetchCursor(
                db, sql: "SELECT offset, data FROM blob_chunk WHERE blob = ? AND offset > ? AND offset < ? ORDER BY offset",
                arguments: [held.sequence, Int64(offset) - Int64(Self.rowBytes), Int64(end)])
            while let row = try rows.next() {
                let start = try row.unsigned(0, as: UInt64.self)
                let data: Data = try row.value(1)
                let from = max(start, offset), to = min(start + UInt64(data.count), end)
                guard from < to else { continue }
                bytes.append(contentsOf: data[data.startIndex + Int(from - start)..<data.startIndex + Int(to - start)])
            }
            guard bytes.count == Int(end - offset) else {
                throw StoreError(.corrupt, "blob \(id): stored bytes are missing between \(offset) and \(end)")
            }
            return bytes
        }
    }

    public func blobFetched(id: BlobID, now: UInt64) throws(StoreError) -> Bool {
        try write("count a blob's fetch") { db in
            guard let held = try Self.held(db, id), held.record.complete, held.record.fetchesLeft > 0 else { return false }
            try db.execute(sql: "UPDATE blob SET fetches_left = fetches_left - 1 WHERE sequence = ?", arguments: [held.sequence])
            let after = Held(sequence: held.sequence, record: BlobRecord(
                id: id, size: held.record.size, committed: held.record.committed, complete: true,
                expiresAt: held.record.expiresAt, fetchesLeft: held.record.fetchesLeft - 1))
            return try Self.deleteIfDone(db, after)
        }
    }

    public func nextBlobForwards(destination: String, excluding: Set<BlobID>, limit: Int, now: UInt64) throws(StoreError) -> [BlobForward] {
        guard limit > 0 else { return [] }
        return try read("read blobs to forward") { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT blob.id, blob.size, blob.expires_at, blob_forward.fetches FROM blob_forward JOIN blob ON blob.sequence = blob_forward.blob
                WHERE blob_forward.destination = ? AND blob.complete = 1 AND blob.expires_at > ? ORDER BY blob_forward.sequence
                """, arguments: [destination, Int64(clamping: now)])
            var forwards: [BlobForward] = []
            while forwards.count < limit, let row = try rows.next() {
                guard let id = BlobID(bytes: [UInt8](try row.value(0, as: Data.self))), !excluding.contains(id) else { continue }
                forwards.append(BlobForward(
                    id: id, destination: destination, size: try row.unsigned(1, as: UInt64.self), expiresAt: try row.unsigned(2, as: UInt64.self), fetches: try row.unsigned(3, as: UInt32.self)))
            }
            return forwards
        }
    }

    public func completeBlobForward(id: BlobID, destination: String, now: UInt64) throws(StoreError) {
        try write("complete a blob's forward") { db in
            guard let held = try Self.held(db, id) else { return }
            try db.execute(sql: "DELETE FROM blob_forward WHERE blob = ? AND destination = ?", arguments: [held.sequence, destination])
            guard held.record.complete else { return }
            _ = try Self.deleteIfDone(db, held)
        }
    }

    public func expireBlobs(now: UInt64) throws(StoreError) -> Int {
        let expired = try write("expire blobs") { db in
            let sequences = try Int64.fetchAll(db, sql: "SELECT sequence FROM blob WHERE expires_at <= ?", arguments: [Int64(clamping: now)])
            for sequence in sequences { try Self.delete(db, sequence: sequence) }
            return sequences.count
        }
        if expired > 0 {
            // Give the freed pages back to the file system (best effort), as the envelope
            // store does: blobs are large, and their room is the disk's.
            try? pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA incremental_vacuum") }
        }
        return expired
    }

    public func blobStatistics(now: UInt64) throws(StoreError) -> BlobStatistics {
        try read("count blobs") { db in
            let moment = Int64(clamping: now)
            let row = try Row.fetchOne(db, sql: "SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM blob WHERE expires_at > ?", arguments: [moment])
            let forwards = try Int.fetchOne(db, sql: """
                SELECT count(*) FROM blob_forward JOIN blob ON blob.sequence = blob_forward.blob WHERE blob.complete = 1 AND blob.expires_at > ?
                """, arguments: [moment]) ?? 0
            return BlobStatistics(count: try row?.value("n") ?? 0, bytes: try row?.unsigned("bytes", as: UInt64.self) ?? 0, forwardsWaiting: forwards)
        }
    }
}
