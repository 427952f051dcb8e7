import Foundation
import Testing
import ValiseCrypto
import ValiseDirectory
@testable import ValiseRelay
import ValiseStore
import ValiseWire

/// The destination's side of a relay link, without I/O: the greeting, and how a Forward is
/// judged (docs/PROTOCOL.md, "Relay links").
@Suite("Relay link: the destination's processor (pure)")
struct LinkRequestProcessorTests {
    let fixture = LinkFixture()
    let settings = LinkRequestProcessor.Settings(maximumEnvelopeBytes: 300_000, maximumEntriesPerFetch: 1000, defaultTTL: .week, maximumTTL: .week)

    func request(_ id: UInt64, _ body: LinkLinkRequest.OneOf_Body) -> [UInt8] {
        var request = LinkLinkRequest()
        request.requestID = id
        request.body = body
        return LinkCodec.encode(request)
    }

    func greeted(_ snapshot: RelayDirectory.Snapshot, peer: String = "jakarta") -> LinkRequestProcessor {
        var processor = LinkRequestProcessor(peerName: peer, settings: settings)
        var hello = LinkLinkHello()
        hello.protocolVersion = LinkCodec.protocolVersion
        hello.relayName = peer
        guard case .reply(let reply) = processor.handle(request(1, .hello(hello)), directory: snapshot), case .welcome(let welcome)? = reply.body else {
            Issue.record("no welcome")
            return processor
        }
        #expect(welcome.relayName == "geneva" && welcome.directoryCount == UInt64(snapshot.count))
        return processor
    }

    func forward(to recipient: String, hops: UInt32 = 1, originCount: Int, ttl: WireTTLClass = .month, size: Int = 4096,
                 head: [UInt8]? = nil) -> LinkForward {
        var forward = LinkForward()
        forward.id = Data(Random.bytes(count: 16))
        forward.recipient = recipient
        forward.precedence = .flash
        forward.requestedTtl = ttl
        forward.ageSeconds = 120
        forward.remainingSeconds = 30 * 86_400
        forward.hops = hops
        forward.originDirectoryCount = UInt64(originCount)
        // The origin's head: the fixture's entry at that count, unless a test gives another.
        forward.originDirectoryHead = Data(head ?? (originCount <= fixture.entries.count
            ? fixture.entries[originCount - 1].hash.bytes : [UInt8](repeating: 3, count: 32)))
        forward.envelope = Data(repeating: 1, count: size)
        return forward
    }

    func judged(_ forward: LinkForward, _ snapshot: RelayDirectory.Snapshot) -> LinkRequestProcessor.Outcome {
        var processor = greeted(snapshot)
        return processor.handle(request(2, .forward(forward)), directory: snapshot)
    }

    func refusal(_ outcome: LinkRequestProcessor.Outcome) -> (LinkForwardResult.Outcome, LinkForwardResult.Reason, String)? {
        guard case .reply(let reply) = outcome, case .forwardResult(let result)? = reply.body else { return nil }
        return (result.outcome, result.reason, result.homeRelay)
    }

    @Test("the first request must be LinkHello naming the relay whose key made the handshake, in version 1")
    func greeting() {
        let snapshot = fixture.snapshot(as: "geneva")
        var processor = LinkRequestProcessor(peerName: "jakarta", settings: settings)
        var hello = LinkLinkHello()
        hello.protocolVersion = LinkCodec.protocolVersion
        hello.relayName = "hq"
        guard case .replyAndClose(let reply) = processor.handle(request(1, .hello(hello)), directory: snapshot) else {
            Issue.record("another relay's name was welcomed")
            return
        }
        #expect(reply.error.code == .notARelay)
        var other = LinkRequestProcessor(peerName: "jakarta", settings: settings)
        hello.relayName = "jakarta"
        hello.protocolVersion = 9
        guard case .replyAndClose(let refused) = other.handle(request(1, .hello(hello)), directory: snapshot) else {
            Issue.record("another version was welcomed")
            return
        }
        #expect(refused.error.code == .unsupportedVersion && refused.error.message == "this relay speaks relay-link version 1, not 9")
        var first = LinkRequestProcessor(peerName: "jakarta", settings: settings)
        guard case .replyAndClose = first.handle(request(1, .ping(WirePing())), directory: snapshot) else {
            Issue.record("a request before the greeting was answered")
            return
        }
    }

    @Test("a Forward for a member homed here is committed with the carried lifetime, the applied TTL capped")
    func accepted() throws {
        let snapshot = fixture.snapshot(as: "geneva")
        guard case .forward(_, let envelope) = judged(forward(to: "bob@geneva", hops: 2, originCount: snapshot.count), snapshot) else {
            Issue.record("not committed")
            return
        }
        #expect(envelope.mailbox.name == "bob@geneva" && envelope.destination == nil && envelope.hops == 2)
        #expect(envelope.ttl == .week, "capped at this relay's maximum")
        #expect(envelope.requestedTTL == UInt8(WireTTLClass.month.rawValue), "the class asked for travels unchanged")
        #expect(envelope.lifetime == CarriedLifetime(age: 120, remaining: 30 * 86_400))
    }

    @Test("refusals: hop limit and bad envelopes are permanent; a member homed elsewhere is NOT_HOME naming the home")
    func refusals() {
        let snapshot = fixture.snapshot(as: "geneva")
        let count = snapshot.count
        #expect(refusal(judged(forward(to: "bob@geneva", hops: 4, originCount: count), snapshot))?.1 == .hopLimit)
        #expect(refusal(judged(forward(to: "bob@geneva", hops: 0, originCount: count), snapshot))?.0 == .permanent)
        #expect(refusal(judged(forward(to: "bob@geneva", originCount: count, size: 0), snapshot))?.1 == .badEnvelope)
        #expect(refusal(judged(forward(to: "bob@geneva", originCount: count, size: 300_001), snapshot))?.1 == .badEnvelope)
        let notHome = refusal(judged(forward(to: "alice@jakarta", originCount: count), snapshot))
        #expect(notHome?.0 == .temporary && notHome?.1 == .notHome && notHome?.2 == "jakarta")
        // Another head at the same sequence: the directories forked.
        guard case .reply(let fork) = judged(forward(to: "bob@geneva", originCount: count, head: [UInt8](repeating: 5, count: 32)), snapshot) else {
            Issue.record("a forked head was not refused")
            return
        }
        #expect(fork.error.code == .directoryFork)
    }

    @Test("unknown or revoked recipients: final only when this relay has seen at least the origin's head")
    func directoryHeads() {
        let before = fixture.snapshot(as: "geneva")
        // Unknown, origin no newer: permanent; origin newer: this relay is behind.
        #expect(refusal(judged(forward(to: "zoe@geneva", originCount: before.count), before))?.1 == .unknownRecipient)
        #expect(refusal(judged(forward(to: "zoe@geneva", originCount: before.count), before))?.0 == .permanent)
        let behind = refusal(judged(forward(to: "zoe@geneva", originCount: before.count + 1), before))
        #expect(behind?.0 == .temporary && behind?.1 == .directoryBehind)
        // Bob revoked at entry N: the origin at N+1 (it saw it) gets a final refusal; an
        // origin that has not seen it is told to catch up first.
        var fixture = self.fixture
        fixture.append(.revoke(Revocation(target: .member(try! MemberName("bob@geneva")), reason: "left")))
        let after = fixture.snapshot(as: "geneva")
        let seen = refusal(judged(forward(to: "bob@geneva", originCount: after.count, head: after.state.headHash.bytes), after))
        #expect(seen?.0 == .permanent && seen?.1 == .recipientRevoked)
        let unseen = refusal(judged(forward(to: "bob@geneva", originCount: before.count), after))
        #expect(unseen?.0 == .temporary && unseen?.1 == .directoryBehind)
    }

    @Test("the answer after the commit: a duplicate is COMMITTED, an id already done here ALREADY_DONE; full is temporary; an id in use elsewhere is a bad envelope")
    func results() {
        let id = MessageID(bytes: Random.bytes(count: 16))!
        let cases: [(AcceptOutcome, LinkForwardResult.Outcome)] = [
            (.accepted(expiresAt: 1000, duplicate: false), .committed),
            (.accepted(expiresAt: 1000, duplicate: true), .committed),
            (.refused(.alreadyDone(.delivered)), .permanent),
            (.refused(.mailboxFull), .temporary),
            (.refused(.storageFull), .temporary),
            (.refused(.idInUse), .permanent),
        ]
        for (outcome, expected) in cases {
            let reply = LinkRequestProcessor.result(5, id: id, outcome: outcome, now: 400, directoryCount: 9)
            #expect(reply.requestID == 5 && reply.forwardResult.outcome == expected, "\(outcome)")
            #expect(reply.forwardResult.id == Data(id.bytes))
        }
        #expect(LinkRequestProcessor.result(5, id: id, outcome: .refused(.alreadyDone(.delivered)), now: 400, directoryCount: 9)
            .forwardResult.reason == .alreadyDone)
        #expect(LinkRequestProcessor.result(5, id: id, outcome: .accepted(expiresAt: 1000, duplicate: false), now: 400, directoryCount: 9)
            .forwardResult.expiresIn == 600)
    }

    @Test("proxied prekey fetches name only members homed here; a request without an id closes the link")
    func proxiedPrekeys() {
        let snapshot = fixture.snapshot(as: "geneva")
        var processor = greeted(snapshot)
        var fetch = WirePrekeyFetch()
        fetch.members = ["bob@geneva", "alice@jakarta", "nobody@geneva"]
        guard case .prekeyFetch(_, let targets, _) = processor.handle(request(3, .prekeyFetch(fetch)), directory: snapshot) else {
            Issue.record("not a prekey fetch")
            return
        }
        #expect(targets.map { $0.member != nil } == [true, false, false])
        guard case .replyAndClose = processor.handle(request(0, .ping(WirePing())), directory: snapshot) else {
            Issue.record("request id 0 was answered")
            return
        }
    }
}
