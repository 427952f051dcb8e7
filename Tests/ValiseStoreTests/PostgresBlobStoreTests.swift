#if Postgres
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Testing
import ValiseCrypto
@testable import ValisePostgres
import ValiseStore

/// The PostgreSQL blob store on its own: the BlobStore contract (declare, resumable appends,
/// hash check, ranged reads, fetch count-down, forwards, quota, expiry, figures). The
/// several-node cases are in PostgresSharedBlobTests.
@Suite("PostgreSQL blob store", .enabled(if: TestPostgres.isAvailable))
struct PostgresBlobStoreTests {
    @Test("a schema of the previous release (migration 1 only) gains the blob tables at start, its envelopes kept")
    func upgradesSchema() throws {
        let schema = TestPostgres.freshSchema()
        let old = try TestPostgres.store(schema: schema)
        try old.insertQueued(messageID(1), mailbox: "alice", arrivedAt: TestBlobs.now, expiresAt: TestBlobs.later, size: 10)
        let logger = Logger(label: "test.downgrade")
        try old.database.withTransaction { connection in
            try await connection.query("DROP TABLE blob_forward, blob_chunk, blob", logger: logger)
            try await connection.query("DELETE FROM schema_migrations WHERE version = 2", logger: logger)
        }
        old.close()
        let (blobs, close) = try TestBlobs.store(schema: schema)
        defer { close() }
        #expect(try blobs.queue.statistics(now: TestBlobs.now).count == 1)
        let file = TestBlobs.bytes(100)
        let id = try TestBlobs.complete(file, in: blobs)
        #expect(try blobs.readBlob(id: id, offset: 0, length: 100, now: TestBlobs.now) == file)
    }

    @Test("a declared blob starts empty; declaring it again returns it, fetches and forwards not declared twice")
    func declareTwice() throws {
        let (blobs, close) = try TestBlobs.store()
        defer { close() }
        let file = TestBlobs.bytes(1_000)
        let first = try blobs.beginBlob(TestBlobs.declaration(file, fetches: 2, forwards: ["field": 1]), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        #expect(first.committed == 0 && !first.complete && first.fetchesLeft == 2 && first.size == 1_000)
        let again = try blobs.beginBlob(TestBlobs.declaration(file, fetches: 9, forwards: ["field": 5, "other": 1]), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        #expect(again == first)
        _ = try blobs.appendBlob(id: TestBlobs.id(file), offset: 0, bytes: file, now: TestBlobs.now)
        #expect(try blobs.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: TestBlobs.now).map(\.fetches) == [1])
        #expect(try blobs.nextBlobForwards(destination: "other", excluding: [], limit: 10, now: TestBlobs.now).isEmpty)
        #expect {
            _ = try blobs.beginBlob(BlobDeclaration(id: TestBlobs.id(file), size: 999, expiresAt: TestBlobs.later, fetches: 1), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        } throws: { ($0 as? StoreError)?.kind == .failure }
    }

    @Test("appends resume at the committed offset: a part sent twice is stored once; a gap or bytes past the size are refused")
    func resumableAppends() throws {
        let (blobs, close) = try TestBlobs.store()
        defer { close() }
        // Over two rows' worth in one part, so that parts are split into rows and read across them.
        let file = TestBlobs.bytes(700_001)
        let id = TestBlobs.id(file)
        _ = try blobs.beginBlob(TestBlobs.declaration(file), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        var record = try blobs.appendBlob(id: id, offset: 0, bytes: Array(file[0..<600_000]), now: TestBlobs.now)
        #expect(record.committed == 600_000 && !record.complete)
        #expect(try blobs.blob(id: id, now: TestBlobs.now) == nil)
        #expect(try blobs.readBlob(id: id, offset: 0, length: 10, now: TestBlobs.now) == nil)
        // A resumed upload learns where to go on from beginBlob.
        #expect(try blobs.beginBlob(TestBlobs.declaration(file), maximumTotalBytes: 1 << 30, now: TestBlobs.now).committed == 600_000)
        #expect {
            _ = try blobs.appendBlob(id: id, offset: 600_001, bytes: [1], now: TestBlobs.now)
        } throws: { ($0 as? StoreError)?.kind == .failure }
        #expect {
            _ = try blobs.appendBlob(id: id, offset: 700_000, bytes: [1, 2], now: TestBlobs.now)
        } throws: { ($0 as? StoreError)?.kind == .failure }
        #expect {
            _ = try blobs.appendBlob(id: id, offset: UInt64.max - 1, bytes: [1, 2, 3], now: TestBlobs.now)
        } throws: { ($0 as? StoreError)?.kind == .failure }
        // A part that overlaps what is committed: only its new bytes are stored.
        record = try blobs.appendBlob(id: id, offset: 500_000, bytes: Array(file[500_000..<650_000]), now: TestBlobs.now)
        #expect(record.committed == 650_000)
        record = try blobs.appendBlob(id: id, offset: 650_000, bytes: Array(file[650_000...]), now: TestBlobs.now)
        #expect(record.complete && record.committed == 700_001)
        #expect(try blobs.appendBlob(id: id, offset: 0, bytes: Array(file[0..<10]), now: TestBlobs.now) == record)
        #expect(try TestBlobs.storedBytes(blobs, id) == 700_001)
        #expect(try blobs.blob(id: id, now: TestBlobs.now) == record)
    }

    @Test("ranged reads return the blob's bytes across rows, fewer at its end, none past it")
    func rangedReads() throws {
        let (blobs, close) = try TestBlobs.store()
        defer { close() }
        let file = TestBlobs.bytes(600_000)
        let id = try TestBlobs.complete(file, in: blobs, partBytes: 100_003)
        for (offset, length) in [(0, 262_144), (262_100, 262_144), (100_000, 1), (599_990, 100), (0, 600_000), (524_287, 2)] {
            let got = try blobs.readBlob(id: id, offset: UInt64(offset), length: length, now: TestBlobs.now)
            #expect(got == Array(file[offset..<min(offset + length, file.count)]), "offset \(offset) length \(length)")
        }
        #expect(try blobs.readBlob(id: id, offset: 600_000, length: 10, now: TestBlobs.now) == [])
        #expect(try blobs.readBlob(id: id, offset: UInt64.max, length: 10, now: TestBlobs.now) == [])
        #expect(try blobs.readBlob(id: id, offset: 0, length: 0, now: TestBlobs.now) == [])
        #expect(try blobs.readBlob(id: TestBlobs.id([9]), offset: 0, length: 10, now: TestBlobs.now) == nil)
    }

    @Test("bytes that do not hash to the id are refused as corrupt and the blob is deleted")
    func mismatchDeletes() throws {
        let (blobs, close) = try TestBlobs.store()
        defer { close() }
        // Over the hash's batch of rows, so that the check reads the blob in several queries.
        var file = TestBlobs.bytes(5 * 1_048_576 + 17)
        let id = TestBlobs.id(file)
        _ = try blobs.beginBlob(TestBlobs.declaration(file), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        file[3_000_000] ^= 1
        _ = try blobs.appendBlob(id: id, offset: 0, bytes: Array(file[..<5_000_000]), now: TestBlobs.now)
        #expect {
            _ = try blobs.appendBlob(id: id, offset: 5_000_000, bytes: Array(file[5_000_000...]), now: TestBlobs.now)
        } throws: { ($0 as? StoreError)?.kind == .corrupt }
        #expect(try blobs.blobStatistics(now: TestBlobs.now).count == 0)
        #expect(try TestBlobs.storedBytes(blobs, id) == 0)
        // The id is free: declared again, it starts from nothing, and the right bytes complete it.
        file[3_000_000] ^= 1
        #expect(try blobs.beginBlob(TestBlobs.declaration(file), maximumTotalBytes: 1 << 30, now: TestBlobs.now).committed == 0)
        #expect(try blobs.appendBlob(id: id, offset: 0, bytes: file, now: TestBlobs.now).complete)
    }

    @Test("each declared fetch counts down; the last deletes the blob unless a forward waits")
    func fetchesCountDown() throws {
        let (blobs, close) = try TestBlobs.store()
        defer { close() }
        let file = TestBlobs.bytes(3_000)
        let id = try TestBlobs.complete(file, in: blobs, fetches: 2, forwards: ["field": 3])
        #expect(try blobs.blobFetched(id: id, now: TestBlobs.now) == false)
        #expect(try blobs.blob(id: id, now: TestBlobs.now)?.fetchesLeft == 1)
        #expect(try blobs.blobFetched(id: id, now: TestBlobs.now) == false)  // the forward waits
        #expect(try blobs.blobFetched(id: id, now: TestBlobs.now) == false)  // no fetch left to count
        #expect(try blobs.blob(id: id, now: TestBlobs.now)?.fetchesLeft == 0)
        try blobs.completeBlobForward(id: id, destination: "field", now: TestBlobs.now)
        #expect(try blobs.blob(id: id, now: TestBlobs.now) == nil)
        #expect(try TestBlobs.storedBytes(blobs, id) == 0)
        #expect(try blobs.blobFetched(id: id, now: TestBlobs.now) == false)

        let other = TestBlobs.bytes(10)
        let otherID = try TestBlobs.complete(other, in: blobs, fetches: 1)
        #expect(try blobs.blobFetched(id: otherID, now: TestBlobs.now) == true)
        #expect(try blobs.blobStatistics(now: TestBlobs.now) == BlobStatistics())
    }

    @Test("forwards wait for the blob to be complete, oldest first, leave out those excluded, and go once completed")
    func forwards() throws {
        let (blobs, close) = try TestBlobs.store()
        defer { close() }
        let (first, second) = (TestBlobs.bytes(100), TestBlobs.bytes(200))
        _ = try blobs.beginBlob(TestBlobs.declaration(first, fetches: 0, forwards: ["field": 2, "north": 1]), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        #expect(try blobs.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: TestBlobs.now).isEmpty)
        let secondID = try TestBlobs.complete(second, in: blobs, fetches: 1, forwards: ["field": 4])
        let firstID = try TestBlobs.complete(first, in: blobs)
        let field = try blobs.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: TestBlobs.now)
        #expect(field == [
            BlobForward(id: firstID, destination: "field", size: 100, expiresAt: TestBlobs.later, fetches: 2),
            BlobForward(id: secondID, destination: "field", size: 200, expiresAt: TestBlobs.later, fetches: 4),
        ])
        #expect(try blobs.nextBlobForwards(destination: "field", excluding: [firstID], limit: 10, now: TestBlobs.now).map(\.id) == [secondID])
        #expect(try blobs.nextBlobForwards(destination: "field", excluding: [], limit: 1, now: TestBlobs.now).map(\.id) == [firstID])
        #expect(try blobs.blobStatistics(now: TestBlobs.now).forwardsWaiting == 3)
        try blobs.completeBlobForward(id: firstID, destination: "field", now: TestBlobs.now)
        #expect(try blobs.blob(id: firstID, now: TestBlobs.now) != nil)  // north still waits
        try blobs.completeBlobForward(id: firstID, destination: "north", now: TestBlobs.now)
        #expect(try blobs.blob(id: firstID, now: TestBlobs.now) == nil)
        try blobs.completeBlobForward(id: secondID, destination: "field", now: TestBlobs.now)
        #expect(try blobs.blob(id: secondID, now: TestBlobs.now) != nil)  // its local fetch is left
        #expect(try blobs.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: TestBlobs.now).isEmpty)
        try blobs.completeBlobForward(id: TestBlobs.id([7]), destination: "field", now: TestBlobs.now)  // unknown: nothing
    }

    @Test("the total quota counts declared sizes of unexpired blobs; a resumed declaration does not count twice")
    func quota() throws {
        let (blobs, close) = try TestBlobs.store()
        defer { close() }
        let (a, b) = (TestBlobs.bytes(600), TestBlobs.bytes(500))
        _ = try blobs.beginBlob(TestBlobs.declaration(a), maximumTotalBytes: 1_000, now: TestBlobs.now)
        #expect(try blobs.beginBlob(TestBlobs.declaration(a), maximumTotalBytes: 1_000, now: TestBlobs.now).size == 600)
        #expect {
            _ = try blobs.beginBlob(TestBlobs.declaration(b), maximumTotalBytes: 1_000, now: TestBlobs.now)
        } throws: { ($0 as? StoreError)?.kind == .limitReached }
        #expect(try blobs.blobStatistics(now: TestBlobs.now) == BlobStatistics(count: 1, bytes: 600, forwardsWaiting: 0))
        // Once the first has expired it no longer counts.
        let short = BlobDeclaration(id: TestBlobs.id(b), size: 500, expiresAt: TestBlobs.later + 10, fetches: 1)
        #expect(try blobs.beginBlob(short, maximumTotalBytes: 1_000, now: TestBlobs.later).size == 500)
    }

    @Test("expired blobs, complete or not, are neither read nor appended to, and the sweep deletes them with their forwards")
    func expiry() throws {
        let (blobs, close) = try TestBlobs.store()
        defer { close() }
        let (done, partial, lasting) = (TestBlobs.bytes(400), TestBlobs.bytes(300), TestBlobs.bytes(200))
        let doneID = try TestBlobs.complete(done, in: blobs, forwards: ["field": 1])
        _ = try blobs.beginBlob(TestBlobs.declaration(partial), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        _ = try blobs.appendBlob(id: TestBlobs.id(partial), offset: 0, bytes: Array(partial[..<100]), now: TestBlobs.now)
        let lastingDeclaration = BlobDeclaration(id: TestBlobs.id(lasting), size: 200, expiresAt: TestBlobs.later + 1_000, fetches: 1)
        _ = try blobs.beginBlob(lastingDeclaration, maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        let after = TestBlobs.later
        #expect(try blobs.blob(id: doneID, now: after) == nil)
        #expect(try blobs.readBlob(id: doneID, offset: 0, length: 10, now: after) == nil)
        #expect(try blobs.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: after).isEmpty)
        #expect {
            _ = try blobs.appendBlob(id: TestBlobs.id(partial), offset: 100, bytes: Array(partial[100...]), now: after)
        } throws: { ($0 as? StoreError)?.kind == .failure }
        #expect(try blobs.blobStatistics(now: after) == BlobStatistics(count: 1, bytes: 200, forwardsWaiting: 0))
        #expect(try blobs.expireBlobs(now: after) == 2)
        #expect(try blobs.expireBlobs(now: after) == 0)
        #expect(try TestBlobs.storedBytes(blobs, doneID) == 0)
        #expect(try TestBlobs.rowCount(blobs, "blob_forward") == 0)
        #expect(try blobs.beginBlob(lastingDeclaration, maximumTotalBytes: 1 << 30, now: after).size == 200)
    }
}

/// Fixtures for the blob suites: random files named by their hash, and stores on fresh schemas.
enum TestBlobs {
    static let now: UInt64 = 1_800_000_000
    static let later: UInt64 = now + 86_400

    static func store(schema: String = TestPostgres.freshSchema()) throws -> (PostgresBlobStore, () -> Void) {
        let queue = try TestPostgres.store(schema: schema)
        return (PostgresBlobStore(queue: queue), { queue.close() })
    }

    static func bytes(_ count: Int) -> [UInt8] {
        Random.bytes(count: count)
    }

    static func id(_ bytes: [UInt8]) -> BlobID {
        BlobID(bytes: BLAKE2b.hash(bytes, outputByteCount: BlobID.byteCount))!
    }

    static func declaration(_ bytes: [UInt8], fetches: UInt32 = 1, forwards: [String: UInt32] = [:]) -> BlobDeclaration {
        BlobDeclaration(id: id(bytes), size: UInt64(bytes.count), expiresAt: later, fetches: fetches, forwards: forwards)
    }

    /// Declares and uploads `bytes` in parts of `partBytes`; returns its id.
    @discardableResult
    static func complete(
        _ bytes: [UInt8], in blobs: PostgresBlobStore, fetches: UInt32 = 1, forwards: [String: UInt32] = [:], partBytes: Int = 262_144
    ) throws -> BlobID {
        var record = try blobs.beginBlob(declaration(bytes, fetches: fetches, forwards: forwards), maximumTotalBytes: 1 << 40, now: now)
        for _ in 0..<(bytes.count / partBytes + 2) where !record.complete {
            let start = Int(record.committed)
            record = try blobs.appendBlob(id: record.id, offset: record.committed, bytes: Array(bytes[start..<min(start + partBytes, bytes.count)]), now: now)
        }
        #expect(record.complete)
        return record.id
    }

    /// The bytes the blob's chunk rows hold, read with SQL.
    static func storedBytes(_ blobs: PostgresBlobStore, _ id: BlobID) throws -> Int64 {
        let key = ByteBuffer(bytes: id.bytes)
        let logger = Logger(label: "test.read")
        return try blobs.queue.database.withConnection { connection in
            var total: Int64 = 0
            for try await value in try await connection.query(
                "SELECT COALESCE(sum(octet_length(data)), 0)::int8 FROM blob_chunk WHERE blob = \(key)", logger: logger).decode(Int64.self) {
                total = value
            }
            return total
        }
    }

    static func rowCount(_ blobs: PostgresBlobStore, _ table: String) throws -> Int64 {
        let logger = Logger(label: "test.read")
        return try blobs.queue.database.withConnection { connection in
            var count: Int64 = 0
            for try await value in try await connection.query("SELECT count(*) FROM \(unescaped: table)", logger: logger).decode(Int64.self) {
                count = value
            }
            return count
        }
    }
}
#endif
