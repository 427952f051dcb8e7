import Foundation
import Testing
import ValiseCrypto
#if Postgres
import ValisePostgres
#endif
import ValiseTestSupport
@testable import ValiseStore

/// The BlobStore contract (issue 20), run against every blob store: each test takes a
/// `StoreKind` from `BlobStoreUnderTest.kinds` and opens its store through a
/// `BlobStoreUnderTest`.
final class BlobStoreUnderTest: @unchecked Sendable {
    let kind: StoreKind
    /// The SQLite file's folder; a PostgreSQL store would use a schema of its own.
    let directory = TemporaryDirectory()
    #if Postgres
    let schema = TestPostgres.freshSchema()
    #endif

    /// How each kind opens its store; each `open` is a new store on the same data (a
    /// restart; for PostgreSQL, a new node on the same schema).
    static let factories: [StoreKind: @Sendable (BlobStoreUnderTest) throws -> any BlobStore] = {
        var factories: [StoreKind: @Sendable (BlobStoreUnderTest) throws -> any BlobStore] = [
            .sqlite: { try SQLiteBlobStore(path: $0.directory.file("blobs.sqlite"), durability: .os) },
        ]
        #if Postgres
        factories[.postgres] = { PostgresBlobStore(queue: try TestPostgres.store(schema: $0.schema)) }
        #endif
        return factories
    }()

    /// The kinds this run can open (PostgreSQL only when built with the trait and a cluster is named).
    static var kinds: [StoreKind] { StoreKind.allCases.filter { factories[$0] != nil } }

    init(_ kind: StoreKind) { self.kind = kind }

    func open() throws -> any BlobStore {
        guard let factory = Self.factories[kind] else { throw QueueUnderTestError("no blob store for \(kind)") }
        return try factory(self)
    }
}

/// Deterministic blob bytes and their id (BLAKE2b-256), as a client's upload would name them.
struct TestBlob {
    let bytes: [UInt8]
    var id: BlobID { BlobID(bytes: BLAKE2b.hash(bytes, outputByteCount: BlobID.byteCount))! }
    var size: UInt64 { UInt64(bytes.count) }

    init(_ n: Int, size: Int) {
        var generator = SplitMix64(seed: UInt64(n) &* 0x9E37_79B9 ^ 0xB10B)
        bytes = generator.bytes(size)
    }

    func declaration(expiresAt: UInt64 = queueEpoch + 86_400, fetches: UInt32 = 1, forwards: [String: UInt32] = [:]) -> BlobDeclaration {
        BlobDeclaration(id: id, size: size, expiresAt: expiresAt, fetches: fetches, forwards: forwards)
    }

    func part(_ range: Range<Int>) -> [UInt8] { Array(bytes[range]) }
}

private let unlimited = UInt64.max
private let now = queueEpoch

/// Begins `blob` and appends all of it in parts of `partBytes`.
@discardableResult
private func upload(
    _ blob: TestBlob, to store: any BlobStore, partBytes: Int = 65_536, declaration: BlobDeclaration? = nil
) throws -> BlobRecord {
    var record = try store.beginBlob(declaration ?? blob.declaration(), maximumTotalBytes: unlimited, now: now)
    var offset = Int(record.committed)
    while offset < blob.bytes.count {
        let end = min(offset + partBytes, blob.bytes.count)
        record = try store.appendBlob(id: blob.id, offset: UInt64(offset), bytes: blob.part(offset..<end), now: now)
        offset = end
    }
    return record
}

private func expectStoreError(_ kind: StoreError.Kind, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected a \(kind) store error, got none")
    } catch let error as StoreError {
        #expect(error.kind == kind, "\(error.message)")
    } catch {
        Issue.record("expected a StoreError, got \(error)")
    }
}

@Suite("BlobStore contract")
struct BlobStoreConformanceTests {
    @Test("a new blob begins empty; beginning it again resumes from what is committed, also after a restart", arguments: BlobStoreUnderTest.kinds)
    func beginAndResume(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        let blob = TestBlob(1, size: 200_000)
        let begun = try store.beginBlob(blob.declaration(fetches: 2), maximumTotalBytes: unlimited, now: now)
        #expect(begun == BlobRecord(id: blob.id, size: blob.size, committed: 0, complete: false, expiresAt: queueEpoch + 86_400, fetchesLeft: 2))
        let part = try store.appendBlob(id: blob.id, offset: 0, bytes: blob.part(0..<70_000), now: now)
        #expect(part.committed == 70_000 && !part.complete)
        // Not complete: neither served nor listed.
        #expect(try store.blob(id: blob.id, now: now) == nil)
        #expect(try store.readBlob(id: blob.id, offset: 0, length: 10, now: now) == nil)

        let reopened = try under.open()
        let resumed = try reopened.beginBlob(blob.declaration(fetches: 2), maximumTotalBytes: unlimited, now: now + 5)
        #expect(resumed.committed == 70_000 && !resumed.complete)
        let done = try upload(blob, to: reopened)
        #expect(done.complete && done.committed == blob.size)
        #expect(try reopened.blob(id: blob.id, now: now) == done)
    }

    @Test("a complete blob reads back by range, across its rows, fewer bytes only at its end", arguments: BlobStoreUnderTest.kinds)
    func readByRange(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        // One append larger than a row, then small ones: rows of several lengths.
        let blob = TestBlob(2, size: 700_001)
        _ = try store.beginBlob(blob.declaration(), maximumTotalBytes: unlimited, now: now)
        _ = try store.appendBlob(id: blob.id, offset: 0, bytes: blob.part(0..<300_000), now: now)
        let record = try upload(blob, to: store, partBytes: 100_003)
        #expect(record.complete)
        for (offset, length) in [(0, 262_144), (262_000, 262_144), (299_999, 2), (650_000, 262_144), (700_000, 10), (123, 1)] {
            let read = try #require(try store.readBlob(id: blob.id, offset: UInt64(offset), length: length, now: now))
            #expect(read == blob.part(offset..<min(offset + length, blob.bytes.count)), "offset \(offset)")
        }
        #expect(try store.readBlob(id: blob.id, offset: blob.size, length: 10, now: now) == [])
        #expect(try store.readBlob(id: blob.id, offset: UInt64.max - 3, length: Int.max, now: now) == [])
    }

    @Test("bytes that do not hash to the id are refused at the last byte and the blob is deleted", arguments: BlobStoreUnderTest.kinds)
    func mismatch(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        let blob = TestBlob(3, size: 100_000)
        _ = try store.beginBlob(blob.declaration(forwards: ["geneva": 2]), maximumTotalBytes: unlimited, now: now)
        _ = try store.appendBlob(id: blob.id, offset: 0, bytes: blob.part(0..<60_000), now: now)
        var tampered = blob.part(60_000..<100_000)
        tampered[7] ^= 1
        expectStoreError(.corrupt) { _ = try store.appendBlob(id: blob.id, offset: 60_000, bytes: tampered, now: now) }
        #expect(try store.blob(id: blob.id, now: now) == nil)
        #expect(try store.blobStatistics(now: now) == BlobStatistics())
        #expect(try store.nextBlobForwards(destination: "geneva", excluding: [], limit: 10, now: now).isEmpty)
        // Gone: an upload starts again from nothing.
        #expect(try store.beginBlob(blob.declaration(), maximumTotalBytes: unlimited, now: now).committed == 0)
    }

    @Test("a gap, bytes past the size and an unknown blob are refused and change nothing; a part sent twice is ignored",
          arguments: BlobStoreUnderTest.kinds)
    func badAppends(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        let blob = TestBlob(4, size: 50_000)
        _ = try store.beginBlob(blob.declaration(), maximumTotalBytes: unlimited, now: now)
        _ = try store.appendBlob(id: blob.id, offset: 0, bytes: blob.part(0..<20_000), now: now)
        expectStoreError(.failure) { _ = try store.appendBlob(id: blob.id, offset: 20_001, bytes: blob.part(20_001..<30_000), now: now) }
        expectStoreError(.failure) { _ = try store.appendBlob(id: blob.id, offset: 20_000, bytes: blob.part(20_000..<50_000) + [0], now: now) }
        expectStoreError(.failure) { _ = try store.appendBlob(id: blob.id, offset: UInt64.max, bytes: [1], now: now) }
        expectStoreError(.failure) { _ = try store.appendBlob(id: TestBlob(5, size: 10).id, offset: 0, bytes: [1], now: now) }
        let repeated = try store.appendBlob(id: blob.id, offset: 10_000, bytes: blob.part(10_000..<20_000), now: now)
        #expect(repeated.committed == 20_000)
        // A part that overlaps the committed length adds only what is past it.
        let overlapping = try store.appendBlob(id: blob.id, offset: 15_000, bytes: blob.part(15_000..<35_000), now: now)
        #expect(overlapping.committed == 35_000)
        #expect(try upload(blob, to: store).complete)
        // Once complete, a part sent again changes nothing either.
        #expect(try store.appendBlob(id: blob.id, offset: 0, bytes: blob.part(0..<100), now: now).complete)
    }

    @Test("beginning a complete blob again returns it complete, without declaring its fetches again", arguments: BlobStoreUnderTest.kinds)
    func repeatedUpload(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        let blob = TestBlob(6, size: 1000)
        try upload(blob, to: store, declaration: blob.declaration(fetches: 2))
        #expect(try store.blobFetched(id: blob.id, now: now) == false)
        let again = try store.beginBlob(blob.declaration(fetches: 2), maximumTotalBytes: unlimited, now: now)
        #expect(again.complete && again.fetchesLeft == 1)
        #expect(try store.blobFetched(id: blob.id, now: now) == true)
    }

    @Test("the same id with another size is refused", arguments: BlobStoreUnderTest.kinds)
    func anotherSize(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        let blob = TestBlob(7, size: 1000)
        _ = try store.beginBlob(blob.declaration(), maximumTotalBytes: unlimited, now: now)
        let other = BlobDeclaration(id: blob.id, size: 1001, expiresAt: queueEpoch + 60, fetches: 1)
        expectStoreError(.failure) { _ = try store.beginBlob(other, maximumTotalBytes: unlimited, now: now) }
        try upload(blob, to: store)
        expectStoreError(.failure) { _ = try store.beginBlob(other, maximumTotalBytes: unlimited, now: now) }
        #expect(try store.blob(id: blob.id, now: now)?.size == 1000)
    }

    @Test("blobs expire complete or not: never served from their expiry on, deleted by the sweep", arguments: BlobStoreUnderTest.kinds)
    func expiry(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        let complete = TestBlob(8, size: 3000), partial = TestBlob(9, size: 3000), later = TestBlob(10, size: 10)
        let expiresAt = queueEpoch + 3600
        try upload(complete, to: store, declaration: complete.declaration(expiresAt: expiresAt, forwards: ["geneva": 1]))
        _ = try store.beginBlob(partial.declaration(expiresAt: expiresAt), maximumTotalBytes: unlimited, now: now)
        _ = try store.appendBlob(id: partial.id, offset: 0, bytes: partial.part(0..<1000), now: now)
        try upload(later, to: store, declaration: later.declaration(expiresAt: expiresAt + 1))

        #expect(try store.expireBlobs(now: expiresAt - 1) == 0)
        #expect(try store.blob(id: complete.id, now: expiresAt - 1) != nil)
        // From its expiry on it is neither served nor forwarded, even before the sweep.
        #expect(try store.blob(id: complete.id, now: expiresAt) == nil)
        #expect(try store.readBlob(id: complete.id, offset: 0, length: 10, now: expiresAt) == nil)
        #expect(try store.nextBlobForwards(destination: "geneva", excluding: [], limit: 10, now: expiresAt).isEmpty)
        expectStoreError(.failure) { _ = try store.appendBlob(id: partial.id, offset: 1000, bytes: partial.part(1000..<3000), now: expiresAt) }

        #expect(try store.expireBlobs(now: expiresAt) == 2)
        #expect(try store.expireBlobs(now: expiresAt) == 0)
        #expect(try store.blobStatistics(now: expiresAt) == BlobStatistics(count: 1, bytes: 10, forwardsWaiting: 0))
        #expect(try store.beginBlob(partial.declaration(expiresAt: expiresAt + 60), maximumTotalBytes: unlimited, now: expiresAt).committed == 0)
    }

    @Test("each completed fetch counts down; the last deletes the blob; more change nothing", arguments: BlobStoreUnderTest.kinds)
    func fetchedCountDown(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        let blob = TestBlob(11, size: 5000), incomplete = TestBlob(12, size: 5000)
        try upload(blob, to: store, declaration: blob.declaration(fetches: 3))
        _ = try store.beginBlob(incomplete.declaration(fetches: 1), maximumTotalBytes: unlimited, now: now)
        #expect(try store.blobFetched(id: incomplete.id, now: now) == false)
        #expect(try store.blobFetched(id: blob.id, now: now) == false)
        #expect(try store.blob(id: blob.id, now: now)?.fetchesLeft == 2)
        #expect(try store.blobFetched(id: blob.id, now: now) == false)
        #expect(try store.blobFetched(id: blob.id, now: now) == true)
        #expect(try store.blob(id: blob.id, now: now) == nil)
        #expect(try store.blobFetched(id: blob.id, now: now) == false)
        #expect(try store.blobFetched(id: TestBlob(13, size: 1).id, now: now) == false)
        #expect(try store.blobStatistics(now: now).count == 1)
    }

    @Test("forwards wait until the blob is complete; it is deleted only once its fetches and every forward are done",
          arguments: BlobStoreUnderTest.kinds)
    func forwards(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        let first = TestBlob(14, size: 4000), second = TestBlob(15, size: 300)
        let declaration = first.declaration(fetches: 1, forwards: ["geneva": 3, "nairobi": 1])
        _ = try store.beginBlob(declaration, maximumTotalBytes: unlimited, now: now)
        #expect(try store.nextBlobForwards(destination: "geneva", excluding: [], limit: 10, now: now).isEmpty)
        try upload(first, to: store, declaration: declaration)
        try upload(second, to: store, declaration: second.declaration(fetches: 0, forwards: ["geneva": 2]))

        let geneva = try store.nextBlobForwards(destination: "geneva", excluding: [], limit: 10, now: now)
        #expect(geneva == [
            BlobForward(id: first.id, destination: "geneva", size: 4000, expiresAt: declaration.expiresAt, fetches: 3),
            BlobForward(id: second.id, destination: "geneva", size: 300, expiresAt: declaration.expiresAt, fetches: 2),
        ])
        #expect(try store.nextBlobForwards(destination: "geneva", excluding: [first.id], limit: 10, now: now).map(\.id) == [second.id])
        #expect(try store.nextBlobForwards(destination: "geneva", excluding: [], limit: 1, now: now).map(\.id) == [first.id])
        #expect(try store.nextBlobForwards(destination: "nairobi", excluding: [], limit: 10, now: now).map(\.fetches) == [1])
        #expect(try store.nextBlobForwards(destination: "hq", excluding: [], limit: 10, now: now).isEmpty)
        #expect(try store.blobStatistics(now: now).forwardsWaiting == 3)

        try store.completeBlobForward(id: first.id, destination: "geneva", now: now)
        #expect(try store.blobFetched(id: first.id, now: now) == false)
        #expect(try store.blob(id: first.id, now: now) != nil)
        try store.completeBlobForward(id: first.id, destination: "nairobi", now: now)
        #expect(try store.blob(id: first.id, now: now) == nil)
        // No fetch here: the last forward done deletes it.
        try store.completeBlobForward(id: second.id, destination: "geneva", now: now)
        #expect(try store.blob(id: second.id, now: now) == nil)
        #expect(try store.blobStatistics(now: now) == BlobStatistics())
        // Completing what is gone changes nothing.
        try store.completeBlobForward(id: second.id, destination: "geneva", now: now)
    }

    @Test("a new blob past the total is refused; held ones resume; expired ones leave room", arguments: BlobStoreUnderTest.kinds)
    func quota(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        let first = TestBlob(16, size: 600), second = TestBlob(17, size: 500), third = TestBlob(18, size: 400)
        _ = try store.beginBlob(first.declaration(expiresAt: queueEpoch + 60), maximumTotalBytes: 1000, now: now)
        expectStoreError(.limitReached) { _ = try store.beginBlob(second.declaration(), maximumTotalBytes: 1000, now: now) }
        #expect(try store.blobStatistics(now: now) == BlobStatistics(count: 1, bytes: 600, forwardsWaiting: 0))
        #expect(try store.beginBlob(first.declaration(expiresAt: queueEpoch + 60), maximumTotalBytes: 700, now: now).size == 600)
        _ = try store.beginBlob(third.declaration(), maximumTotalBytes: 1000, now: now)
        _ = try store.expireBlobs(now: queueEpoch + 60)
        _ = try store.beginBlob(second.declaration(), maximumTotalBytes: 1000, now: queueEpoch + 60)
        #expect(try store.blobStatistics(now: queueEpoch + 60) == BlobStatistics(count: 2, bytes: 900, forwardsWaiting: 0))
    }

    @Test("statistics count blobs held by declared size, complete or not, and forwards of complete ones", arguments: BlobStoreUnderTest.kinds)
    func statistics(kind: StoreKind) throws {
        let under = BlobStoreUnderTest(kind)
        let store = try under.open()
        defer { withExtendedLifetime(under) {} }
        #expect(try store.blobStatistics(now: now) == BlobStatistics())
        let complete = TestBlob(19, size: 2500), partial = TestBlob(20, size: 7000)
        try upload(complete, to: store, declaration: complete.declaration(forwards: ["geneva": 1, "nairobi": 2]))
        _ = try store.beginBlob(partial.declaration(forwards: ["geneva": 1]), maximumTotalBytes: unlimited, now: now)
        #expect(try store.blobStatistics(now: now) == BlobStatistics(count: 2, bytes: 9500, forwardsWaiting: 2))
    }
}
