import Foundation
import Testing
import ValiseCrypto
@testable import ValiseRelay
import ValiseStore
import ValiseTestSupport
import ValiseWire

/// A whole blob crossing a relay link without network I/O: the origin's session and the
/// destination's processor, each over its own SQLiteBlobStore (docs/PROTOCOL.md, "Blobs
/// over links").
@Suite("Relay link: a blob crossing (pure)")
struct BlobCrossingTests {
    let responder = LinkBlobResponderTests()
    var fixture: LinkFixture { responder.fixture }

    @Test("a blob crosses a link once, in parts, into the destination's store with its fetches; an offer of a held blob is COMPLETE at once")
    func crossing() throws {
        let folder = TemporaryDirectory()
        let snapshot = fixture.snapshot(as: "jakarta")
        let now = fixture.now
        let origin: any BlobStore = try SQLiteBlobStore(path: folder.file("origin.sqlite"))
        let destination: any BlobStore = try SQLiteBlobStore(path: folder.file("blobs.sqlite"))
        let bytes = Random.bytes(count: 700_000)
        let id = BlobID(bytes: BLAKE2b.hash(bytes, outputByteCount: 32))!
        _ = try origin.beginBlob(BlobDeclaration(id: id, size: UInt64(bytes.count), expiresAt: now + 3600, fetches: 0, forwards: ["geneva": 2]),
                                 maximumTotalBytes: 1 << 30, now: now)
        for offset in stride(from: 0, to: bytes.count, by: LinkBlobLane.partBytes) {
            _ = try origin.appendBlob(id: id, offset: UInt64(offset), bytes: Array(bytes[offset..<min(bytes.count, offset + LinkBlobLane.partBytes)]), now: now)
        }
        var (session, _) = LinkSessionTests().established()
        var processor = responder.greeted()
        var actions = session.loaded([], limit: 2, directory: snapshot, now: now)
        var requests = 0
        // Bounded: 3 parts and an offer, each a round trip.
        for _ in 0..<50 where !actions.isEmpty {
            var next: [LinkSession.Action] = []
            for action in actions {
                switch action {
                case .loadBlobs(let excluding, let limit):
                    next += session.blobsLoaded(try origin.nextBlobForwards(destination: "geneva", excluding: excluding, limit: limit, now: now), limit: limit, now: now)
                case .readBlob(let id, let offset, let length):
                    next += session.blobRead(id, offset: offset, bytes: try origin.readBlob(id: id, offset: offset, length: length, now: now), now: now)
                case .completeBlob(let id, let refused):
                    #expect(refused == nil)
                    try origin.completeBlobForward(id: id, destination: "geneva", now: now)
                    next += session.blobCompleted(id, now: now)
                case .send(let request):
                    requests += 1
                    let reply: LinkLinkReply
                    switch processor.handle(LinkCodec.encode(request), directory: fixture.snapshot(as: "geneva")) {
                    case .blobOffer(let requestID, let id, let size, let lifetime, let fetches):
                        reply = processor.blobStored(requestID, id: id, offer: true, Result { () throws(StoreError) in
                            try destination.beginBlob(BlobDeclaration(id: id, size: size, expiresAt: now + lifetime, fetches: fetches),
                                                      maximumTotalBytes: 1 << 30, now: now) })
                    case .blobPart(let requestID, let id, let offset, let bytes):
                        reply = processor.blobStored(requestID, id: id, offer: false, Result { () throws(StoreError) in
                            try destination.appendBlob(id: id, offset: offset, bytes: bytes, now: now) })
                    case .reply(let answer):
                        reply = answer
                    default:
                        Issue.record("an unexpected outcome")
                        return
                    }
                    next += session.receive(reply, directory: snapshot, now: now)
                default:
                    break
                }
            }
            actions = next
        }
        #expect(requests == 4, "one offer and three parts")
        let held = try #require(try destination.blob(id: id, now: now))
        #expect(held.fetchesLeft == 2 && held.size == 700_000)
        #expect(try destination.readBlob(id: id, offset: 0, length: 700_000, now: now) == bytes)
        #expect(try origin.nextBlobForwards(destination: "geneva", excluding: [], limit: 10, now: now).isEmpty)
        #expect(try origin.blobStatistics(now: now).count == 0, "no fetch here and no forward left: deleted at the origin")

        // Offered again (an answer lost, say): COMPLETE at once, fetches not declared again.
        let again = try destination.beginBlob(BlobDeclaration(id: id, size: 700_000, expiresAt: now + 60, fetches: 5), maximumTotalBytes: 1 << 30, now: now)
        #expect(processor.blobStored(99, id: id, offer: true, .success(again)).blobResult.outcome == .complete)
        #expect(try destination.blob(id: id, now: now)?.fetchesLeft == 2)
    }
}
