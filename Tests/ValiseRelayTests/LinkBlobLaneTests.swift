import Foundation
import Testing
import ValiseCrypto
@testable import ValiseRelay
import ValiseStore
import ValiseWire

/// The origin's blob lane on a relay link, without I/O: below envelopes, one blob request
/// in flight, and what each BlobResult means (docs/PROTOCOL.md, "Blobs over links").
@Suite("Relay link: the blob lane (pure)")
struct LinkBlobLaneTests {
    let links = LinkSessionTests()
    var now: UInt64 { links.fixture.now }

    func forward(size: UInt64 = 600_000, expiresIn: UInt64 = 3600, fetches: UInt32 = 2) -> BlobForward {
        BlobForward(id: BlobID(bytes: Random.bytes(count: 32))!, destination: "geneva", size: size, expiresAt: now + expiresIn, fetches: fetches)
    }

    func blobRequests(_ actions: [LinkSession.Action]) -> [LinkLinkRequest] {
        links.sent(actions).filter { if case .blobOffer = $0.body { true } else if case .blobPart = $0.body { true } else { false } }
    }

    func result(_ request: LinkLinkRequest, _ outcome: LinkBlobResult.Outcome, committed: UInt64 = 0,
                _ reason: LinkBlobResult.Reason = .unspecified) -> LinkLinkReply {
        let id = if case .blobOffer(let offer)? = request.body { offer.blobID } else { request.blobPart.blobID }
        var reply = LinkRequestProcessor.blobResult(request.requestID, id, outcome, reason, "")
        reply.blobResult.committed = committed
        return reply
    }

    /// An established session whose envelope queue is empty (caught up), asked for blob work.
    func caughtUp() -> (LinkSession, [LinkSession.Action]) {
        var (session, snapshot) = links.established()
        let actions = session.loaded([], limit: 2, directory: snapshot, now: now)
        return (session, actions)
    }

    /// Caught up and handed `blob`: its offer.
    func offering(_ blob: BlobForward) -> (LinkSession, LinkLinkRequest) {
        var (session, actions) = caughtUp()
        #expect(actions.contains { if case .loadBlobs(let excluding, _) = $0 { excluding.isEmpty } else { false } })
        let offers = blobRequests(session.blobsLoaded([blob], limit: 16, now: now))
        #expect(offers.count == 1)
        return (session, offers[0])
    }

    @Test("no blob work while an envelope waits: the lane starts only once the forwarding queue is found empty")
    func belowEnvelopes() {
        var (session, snapshot) = links.established()
        // The greeting's load is running: no blob load yet.
        #expect(session.pumpBlobs(now: now).isEmpty)
        let envelope = LinkFixture.envelope("bob@geneva", arrivedAt: now, expiresAt: now + 60)
        // A full load (as many as asked): envelopes may still wait; blobs do not go.
        let actions = session.loaded([envelope, LinkFixture.envelope("bob@geneva", arrivedAt: now, expiresAt: now + 60)],
                                     limit: 2, directory: snapshot, now: now)
        #expect(!actions.contains { if case .loadBlobs = $0 { true } else { false } })
    }

    @Test("an offer carries size, remaining seconds and fetches; CONTINUE reads from committed; one blob request in flight")
    func offerAndParts() throws {
        let blob = forward()
        var (session, offer) = offering(blob)
        #expect(offer.blobOffer.blobID == Data(blob.id.bytes) && offer.blobOffer.size == 600_000)
        #expect(offer.blobOffer.remainingSeconds == 3600 && offer.blobOffer.fetches == 2)
        #expect(session.pumpBlobs(now: now).isEmpty, "one blob request in flight")

        let read = session.receive(result(offer, .continue, committed: 0), directory: links.fixture.snapshot(as: "jakarta"), now: now)
        #expect(read.contains { if case .readBlob(let id, 0, 262_144) = $0 { id == blob.id } else { false } })
        let parts = blobRequests(session.blobRead(blob.id, offset: 0, bytes: [UInt8](repeating: 1, count: 262_144), now: now))
        #expect(parts.count == 1 && parts[0].blobPart.offset == 0 && parts[0].blobPart.data.count == 262_144)
        #expect(session.blobs.inFlight == blob.id)

        // The last part is short: the blob's end.
        let next = session.receive(result(parts[0], .continue, committed: 524_288), directory: links.fixture.snapshot(as: "jakarta"), now: now)
        #expect(next.contains { if case .readBlob(_, 524_288, 600_000 - 524_288) = $0 { true } else { false } })
    }

    @Test("a FLASH envelope committed while a part is in flight goes at once, and before the next part")
    func flashFirst() {
        let blob = forward()
        let snapshot = links.fixture.snapshot(as: "jakarta")
        var (session, offer) = offering(blob)
        _ = session.receive(result(offer, .continue), directory: snapshot, now: now)
        let part = blobRequests(session.blobRead(blob.id, offset: 0, bytes: [UInt8](repeating: 1, count: 262_144), now: now))[0]

        // Caught up: the FLASH envelope goes straight out beside the part in flight.
        let flash = LinkFixture.envelope("bob@geneva", precedence: .flash, arrivedAt: now, expiresAt: now + 60)
        let direct = links.sent(session.offer(flash, directory: snapshot, now: now))
        #expect(direct.count == 1 && direct[0].forward.id == Data(flash.id.bytes))

        // More envelopes committed than the window takes: they wait in the store, and so does the next part.
        let wake = session.wake(now: now)
        #expect(wake.contains { if case .load = $0 { true } else { false } })
        _ = session.receive(result(part, .continue, committed: 262_144), directory: snapshot, now: now)
        let held = session.blobRead(blob.id, offset: 262_144, bytes: [UInt8](repeating: 2, count: 262_144), now: now)
        #expect(blobRequests(held).isEmpty, "the part waits while an envelope load runs")
        let routine = LinkFixture.envelope("bob@geneva", arrivedAt: now, expiresAt: now + 60)
        let forwards = session.loaded([routine], limit: 1, directory: snapshot, now: now)
        #expect(links.sent(forwards).map(\.forward.id) == [Data(routine.id.bytes)])
        #expect(blobRequests(forwards).isEmpty, "the load was full: envelopes may still wait")

        // The queue drains: an answer, a load that finds nothing, and the part goes.
        _ = session.receive(links.result(direct[0], .committed), directory: snapshot, now: now)
        let after = session.loaded([], limit: 1, directory: snapshot, now: now)
        let next = blobRequests(after)
        #expect(next.count == 1 && next[0].blobPart.offset == 262_144)
    }

    @Test("COMPLETE and PERMANENT end the forward; a finished blob is left out of loads until the store records it")
    func completion() {
        let blob = forward()
        var (session, offer) = offering(blob)
        let snapshot = links.fixture.snapshot(as: "jakarta")
        let done = session.receive(result(offer, .complete), directory: snapshot, now: now)
        #expect(done.contains { if case .completeBlob(let id, nil) = $0 { id == blob.id } else { false } })
        // Woken (another blob completed here): the load leaves out the one being recorded.
        let load = session.wakeBlobs(now: now)
        #expect(load.contains { if case .loadBlobs(let excluding, _) = $0 { excluding == [blob.id] } else { false } })
        _ = session.blobsLoaded([blob], limit: 16, now: now)
        #expect(session.blobs.currentID == nil, "not offered again while its completion is recorded")
        _ = session.blobCompleted(blob.id, now: now)
        #expect(session.blobs.completing.isEmpty)

        let refused = forward()
        var (other, offer2) = offering(refused)
        let permanent = other.receive(result(offer2, .permanent, .badBlob), directory: snapshot, now: now)
        #expect(permanent.contains { if case .completeBlob(let id, let reason?) = $0 { id == refused.id && reason.contains("bounds") } else { false } })
    }

    @Test("TEMPORARY, or a refusal as a whole, offers again after 15 s; an expired blob is never offered")
    func temporary() {
        let blob = forward()
        var (session, offer) = offering(blob)
        let snapshot = links.fixture.snapshot(as: "jakarta")
        let waiting = session.receive(result(offer, .temporary, .storageFull), directory: snapshot, now: now)
        #expect(blobRequests(waiting).isEmpty)
        #expect(session.blobs.deferred[blob.id] == now + 15)
        _ = session.blobsLoaded([], limit: 16, now: now)
        #expect(blobRequests(session.tick(now: now + 14)).isEmpty)
        let again = session.tick(now: now + 15)
        #expect(again.contains { if case .loadBlobs(let excluding, _) = $0 { excluding.isEmpty } else { false } })
        let offered = blobRequests(session.blobsLoaded([blob], limit: 16, now: now + 15))
        #expect(offered.count == 1 && offered[0].blobOffer.remainingSeconds == 3585)

        let error = LinkRequestProcessor.error(offered[0].requestID, .badRequest, "this relay keeps no blobs")
        let warned = session.receive(error, directory: snapshot, now: now + 15)
        #expect(warned.contains { if case .warn = $0 { true } else { false } } && !session.closed)
        #expect(session.blobs.deferred[blob.id] == now + 30)

        var (fresh, _) = caughtUp()
        let expired = forward(expiresIn: 0)
        #expect(blobRequests(fresh.blobsLoaded([expired], limit: 16, now: now)).isEmpty)
    }

    @Test("after a reconnect the blob is offered again and resumes at the destination's committed length")
    func resume() {
        let blob = forward(size: 1_000_000)
        var (session, offer) = offering(blob)
        let actions = session.receive(result(offer, .continue, committed: 786_432), directory: links.fixture.snapshot(as: "jakarta"), now: now)
        #expect(actions.contains { if case .readBlob(_, 786_432, 1_000_000 - 786_432) = $0 { true } else { false } })
        // A blob that vanished here in between is left for a while; nothing is sent.
        #expect(blobRequests(session.blobRead(blob.id, offset: 786_432, bytes: nil, now: now)).isEmpty)
        #expect(session.blobs.deferred[blob.id] != nil)
    }

    @Test("an answer for another blob, or an unknown outcome, closes the link")
    func protocolErrors() {
        var (session, offer) = offering(forward())
        var wrong = result(offer, .continue)
        wrong.blobResult.blobID = Data(Random.bytes(count: 32))
        #expect(session.receive(wrong, directory: links.fixture.snapshot(as: "jakarta"), now: now).contains { if case .close = $0 { true } else { false } })
    }
}
