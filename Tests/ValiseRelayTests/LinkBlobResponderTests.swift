import Foundation
import Testing
import ValiseCrypto
@testable import ValiseRelay
import ValiseStore
import ValiseWire

/// The destination's side of blobs over a link, without I/O: an offer's bounds, a part's
/// place, and the store's answers as BlobResults (docs/PROTOCOL.md, "Blobs over links").
@Suite("Relay link: blobs at the destination (pure)")
struct LinkBlobResponderTests {
    let processorTests = LinkRequestProcessorTests()
    var fixture: LinkFixture { processorTests.fixture }
    let settings = LinkRequestProcessor.Settings(
        maximumEnvelopeBytes: 300_000, maximumEntriesPerFetch: 1000, defaultTTL: .week, maximumTTL: .week, maximumBlobBytes: 1_000_000)

    func greeted(_ settings: LinkRequestProcessor.Settings? = nil) -> LinkRequestProcessor {
        var processor = LinkRequestProcessor(peerName: "jakarta", settings: settings ?? self.settings)
        var hello = LinkLinkHello()
        hello.protocolVersion = LinkCodec.protocolVersion
        hello.relayName = "jakarta"
        _ = processor.handle(processorTests.request(1, .hello(hello)), directory: fixture.snapshot(as: "geneva"))
        return processor
    }

    func offer(_ id: [UInt8] = Random.bytes(count: 32), size: UInt64 = 5000, remaining: UInt64 = 3600, fetches: UInt32 = 2) -> LinkLinkRequest.OneOf_Body {
        var offer = LinkBlobOffer()
        offer.blobID = Data(id)
        offer.size = size
        offer.remainingSeconds = remaining
        offer.fetches = fetches
        return .blobOffer(offer)
    }

    func part(_ id: BlobID, offset: UInt64, _ bytes: [UInt8]) -> LinkLinkRequest.OneOf_Body {
        var part = LinkBlobPart()
        part.blobID = Data(id.bytes)
        part.offset = offset
        part.data = Data(bytes)
        return .blobPart(part)
    }

    func blobResult(_ outcome: LinkRequestProcessor.Outcome) -> LinkBlobResult? {
        guard case .reply(let reply) = outcome, case .blobResult(let result)? = reply.body else { return nil }
        return result
    }

    @Test("an offer out of bounds is PERMANENT BAD_BLOB; within them its lifetime is capped at this relay's maximum TTL")
    func offerBounds() {
        let snapshot = fixture.snapshot(as: "geneva")
        var processor = greeted()
        for bad in [offer(Random.bytes(count: 31)), offer(size: 0), offer(size: 1_000_001), offer(remaining: 0), offer(fetches: 0), offer(fetches: 1001)] {
            let refused = blobResult(processor.handle(processorTests.request(2, bad), directory: snapshot))
            #expect(refused?.outcome == .permanent && refused?.reason == .badBlob)
        }
        guard case .blobOffer(2, _, 1_000_000, let lifetime, 1000) = processor.handle(
            processorTests.request(2, offer(size: 1_000_000, remaining: 90 * 86_400, fetches: 1000)), directory: snapshot) else {
            Issue.record("an offer within bounds was refused")
            return
        }
        #expect(lifetime == TTLClass.week.seconds)
        // A relay that keeps no blobs refuses the request as a whole.
        var none = greeted(processorTests.settings)
        guard case .reply(let reply) = none.handle(processorTests.request(2, offer()), directory: snapshot) else {
            Issue.record("no answer")
            return
        }
        #expect(reply.error.code == .badRequest)
    }

    @Test("a part must follow an offer, at the committed length, within the size; the store's answers become BlobResults")
    func parts() {
        let snapshot = fixture.snapshot(as: "geneva")
        var processor = greeted()
        let id = BlobID(bytes: Random.bytes(count: 32))!
        // Before any offer: NOT_OFFERED, temporary.
        let unoffered = blobResult(processor.handle(processorTests.request(3, part(id, offset: 0, [1])), directory: snapshot))
        #expect(unoffered?.outcome == .temporary && unoffered?.reason == .notOffered)
        // The offer's answer records what the store holds.
        let record = BlobRecord(id: id, size: 5000, committed: 1000, complete: false, expiresAt: 9_999, fetchesLeft: 2)
        let resumed = processor.blobStored(4, id: id, offer: true, .success(record))
        #expect(resumed.blobResult.outcome == .continue && resumed.blobResult.committed == 1000 && resumed.requestID == 4)
        // A gap, or past the size: permanent.
        #expect(blobResult(processor.handle(processorTests.request(5, part(id, offset: 1001, [1])), directory: snapshot))?.reason == .badBlob)
        _ = processor.blobStored(6, id: id, offer: true, .success(record))
        #expect(blobResult(processor.handle(processorTests.request(7, part(id, offset: 1000, [UInt8](repeating: 0, count: 4001))), directory: snapshot))?.reason == .badBlob)
        _ = processor.blobStored(8, id: id, offer: true, .success(record))
        guard case .blobPart(9, id, 1000, let bytes) = processor.handle(processorTests.request(9, part(id, offset: 1000, [7, 7])), directory: snapshot) else {
            Issue.record("a part in place was not stored")
            return
        }
        #expect(bytes == [7, 7])
        // More than one wire chunk in a part: permanent.
        #expect(blobResult(processor.handle(processorTests.request(10, part(id, offset: 1000, [UInt8](repeating: 0, count: 262_145))), directory: snapshot))?.reason == .badBlob)

        let cases: [(Bool, StoreError.Kind, LinkBlobResult.Outcome, LinkBlobResult.Reason)] = [
            (false, .corrupt, .permanent, .blobMismatch),
            (true, .limitReached, .temporary, .storageFull),
            (false, .storageFull, .temporary, .storageFull),
            (true, .failure, .permanent, .badBlob),
            (false, .failure, .temporary, .notOffered),
        ]
        for (isOffer, kind, outcome, reason) in cases {
            let answer = processor.blobStored(11, id: id, offer: isOffer, .failure(StoreError(kind, "x"))).blobResult
            #expect(answer.outcome == outcome && answer.reason == reason, "\(kind)")
        }
        let complete = BlobRecord(id: id, size: 5000, committed: 5000, complete: true, expiresAt: 9_999, fetchesLeft: 2)
        #expect(processor.blobStored(12, id: id, offer: true, .success(complete)).blobResult.outcome == .complete)
        #expect(processor.offeredBlobs.isEmpty)
    }
}
