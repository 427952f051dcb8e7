#if Postgres
import Dispatch
import Foundation
import Testing
import ValiseCrypto
@testable import ValisePostgres
import ValiseStore

/// Several nodes on one blob store: a client that fails over mid-upload resumes on another
/// node; parts that two nodes receive at once are stored once; the quota holds across nodes;
/// one node's sweep does the job for all; completion is announced to the other nodes' links.
@Suite("PostgreSQL blob store, several nodes", .enabled(if: TestPostgres.isAvailable))
struct PostgresSharedBlobTests {
    /// Two blob stores (two nodes) on one fresh schema.
    static func twoNodes() throws -> (PostgresBlobStore, PostgresBlobStore, () -> Void) {
        let (a, b) = try TestPostgres.twoNodes()
        return (PostgresBlobStore(queue: a), PostgresBlobStore(queue: b), { a.close(); b.close() })
    }

    @Test("an upload begun on one node resumes on the other from the committed offset")
    func resumeOnAnotherNode() throws {
        let (a, b, close) = try Self.twoNodes()
        defer { close() }
        let file = TestBlobs.bytes(900_000)
        let id = TestBlobs.id(file)
        _ = try a.beginBlob(TestBlobs.declaration(file), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        _ = try a.appendBlob(id: id, offset: 0, bytes: Array(file[..<262_144]), now: TestBlobs.now)
        _ = try a.appendBlob(id: id, offset: 262_144, bytes: Array(file[262_144..<524_288]), now: TestBlobs.now)
        // The node failed; the client declares again on the other and goes on from there.
        let resumed = try b.beginBlob(TestBlobs.declaration(file), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        #expect(resumed.committed == 524_288 && !resumed.complete)
        let done = try b.appendBlob(id: id, offset: resumed.committed, bytes: Array(file[524_288...]), now: TestBlobs.now)
        #expect(done.complete)
        #expect(try a.blob(id: id, now: TestBlobs.now) == done)
        #expect(try a.readBlob(id: id, offset: 0, length: file.count, now: TestBlobs.now) == file)
    }

    @Test("the same parts appended by two nodes at once are stored once, and the blob completes")
    func concurrentAppends() throws {
        let (a, b, close) = try Self.twoNodes()
        defer { close() }
        let file = TestBlobs.bytes(10 * 65_536 + 5)
        let id = TestBlobs.id(file)
        _ = try a.beginBlob(TestBlobs.declaration(file), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
        let failures = Locked<[String]>([])
        let completions = Locked(0)
        for start in stride(from: 0, to: file.count, by: 65_536) {
            let part = Array(file[start..<min(start + 65_536, file.count)])
            DispatchQueue.concurrentPerform(iterations: 2) { node in
                do {
                    let record = try (node == 0 ? a : b).appendBlob(id: id, offset: UInt64(start), bytes: part, now: TestBlobs.now)
                    if record.complete { completions.withValue { $0 += 1 } }
                } catch {
                    failures.withValue { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.current == [])
        #expect(completions.current == 2)  // the second sees it complete: a part sent twice
        #expect(try TestBlobs.storedBytes(a, id) == Int64(file.count))
        #expect(try b.readBlob(id: id, offset: 0, length: file.count, now: TestBlobs.now) == file)
    }

    @Test("two nodes declaring at once cannot both take the last room of the quota")
    func quotaAcrossNodes() throws {
        let (a, b, close) = try Self.twoNodes()
        defer { close() }
        for _ in 0..<5 {
            let files = [TestBlobs.bytes(600), TestBlobs.bytes(600)]
            let accepted = Locked(0)
            let refused = Locked(0)
            DispatchQueue.concurrentPerform(iterations: 2) { node in
                do throws(StoreError) {
                    _ = try (node == 0 ? a : b).beginBlob(TestBlobs.declaration(files[node]), maximumTotalBytes: 1_000, now: TestBlobs.now)
                    accepted.withValue { $0 += 1 }
                } catch {
                    if error.kind == .limitReached { refused.withValue { $0 += 1 } }
                }
            }
            #expect(accepted.current == 1 && refused.current == 1)
            // Room again for the next round: the sweep takes what is past its expiry.
            #expect(try a.expireBlobs(now: TestBlobs.later) == 1)
        }
    }

    @Test("one node's sweep deletes every node's expired blobs, once")
    func expiryByOneNode() throws {
        let (a, b, close) = try Self.twoNodes()
        defer { close() }
        let ids = try (0..<20).map { _ in try TestBlobs.complete(TestBlobs.bytes(1_000), in: a) }
        #expect(try b.blobStatistics(now: TestBlobs.now).count == 20)
        #expect(try b.expireBlobs(now: TestBlobs.later) == 20)
        #expect(try a.expireBlobs(now: TestBlobs.later) == 0)
        #expect(try a.blobStatistics(now: TestBlobs.now) == BlobStatistics())
        for id in ids { #expect(try TestBlobs.storedBytes(a, id) == 0) }
    }

    @Test("a blob's forward is leased to the node whose link took it, until the lease runs out")
    func forwardLeases() throws {
        let (a, b, close) = try Self.twoNodes()
        defer { close() }
        let id = try TestBlobs.complete(TestBlobs.bytes(1_000), in: a, forwards: ["field": 1])
        let now = TestBlobs.now
        #expect(try a.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: now).map(\.id) == [id])
        #expect(try b.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: now).isEmpty)
        // The holder gets it again (an offer repeated after TEMPORARY), which renews the lease.
        #expect(try a.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: now + 30).map(\.id) == [id])
        #expect(try b.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: now + 89).isEmpty)
        // The holder stopped (killed mid-transfer): once its lease ran out the other node takes it.
        #expect(try b.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: now + 90).map(\.id) == [id])
        #expect(try a.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: now + 91).isEmpty)
        try b.completeBlobForward(id: id, destination: "field", now: now + 100)
        #expect(try a.nextBlobForwards(destination: "field", excluding: [], limit: 10, now: now + 1_000).isEmpty)
        #expect(try a.blob(id: id, now: now + 100) != nil)  // its local fetch is left
    }

    @Test("a blob that completes with forwards is announced to every node as work for those relays' links")
    func completionAnnounced() async throws {
        let (a, _, close) = try Self.twoNodes()
        defer { close() }
        let destination = "field-" + UUID().uuidString.lowercased()
        try await AnnouncementWatcher.watching(schema: a.queue.database.configuration.schema) { watcher in
            let file = TestBlobs.bytes(1_000)
            _ = try a.beginBlob(TestBlobs.declaration(file, forwards: [destination: 2]), maximumTotalBytes: 1 << 30, now: TestBlobs.now)
            _ = try a.appendBlob(id: TestBlobs.id(file), offset: 0, bytes: Array(file[..<500]), now: TestBlobs.now)
            #expect(try await watcher.changesSoFar().isEmpty)
            _ = try a.appendBlob(id: TestBlobs.id(file), offset: 500, bytes: Array(file[500...]), now: TestBlobs.now)
            #expect(try await watcher.changesSoFar() == [.destinations([destination])])
        }
    }
}
#endif
