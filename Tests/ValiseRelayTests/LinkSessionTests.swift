import Foundation
import Testing
import ValiseCrypto
import ValiseDirectory
@testable import ValiseRelay
import ValiseStore
import ValiseTestSupport
import ValiseWire

/// The origin's side of a relay link, without I/O: greeting, directory exchange, the window
/// of Forwards, and what each answer means for the forwarding queue.
@Suite("Relay link: the origin's session (pure)")
struct LinkSessionTests {
    let fixture = LinkFixture()

    func sent(_ actions: [LinkSession.Action]) -> [LinkLinkRequest] {
        actions.compactMap { if case .send(let request) = $0 { request } else { nil } }
    }

    func welcome(_ id: UInt64, name: String = "geneva", count: Int, head: [UInt8]) -> LinkLinkReply {
        var welcome = LinkLinkWelcome()
        welcome.protocolVersion = LinkCodec.protocolVersion
        welcome.relayName = name
        welcome.directoryCount = UInt64(count)
        welcome.directoryHead = Data(head)
        return LinkRequestProcessor.reply(id, .welcome(welcome))
    }

    func result(_ request: LinkLinkRequest, _ outcome: LinkForwardResult.Outcome, _ reason: LinkForwardResult.Reason = .unspecified,
                home: String = "") -> LinkLinkReply {
        var result = LinkForwardResult()
        result.id = request.forward.id
        result.outcome = outcome
        result.reason = reason
        result.homeRelay = home
        return LinkRequestProcessor.reply(request.requestID, .forwardResult(result))
    }

    /// A session past its greeting, both directories equal.
    func established() -> (LinkSession, RelayDirectory.Snapshot) {
        let snapshot = fixture.snapshot(as: "jakarta")
        var session = LinkSession(localName: "jakarta", peerName: "geneva", settings: .init(window: 2))
        let hello = sent(session.start(directory: snapshot, now: fixture.now))
        #expect(hello.count == 1 && hello[0].hello.relayName == "jakarta" && hello[0].hello.directoryCount == UInt64(snapshot.count))
        let actions = session.receive(welcome(hello[0].requestID, count: snapshot.count, head: snapshot.state.headHash.bytes),
                                      directory: snapshot, now: fixture.now)
        #expect(actions.contains { if case .established = $0 { true } else { false } })
        #expect(actions.contains { if case .load(_, let limit) = $0 { limit == 2 } else { false } })
        return (session, snapshot)
    }

    @Test("greeting: a welcome from another relay name, or another version, closes the link")
    func greeting() {
        let snapshot = fixture.snapshot(as: "jakarta")
        for bad in [welcome(1, name: "hq", count: snapshot.count, head: snapshot.state.headHash.bytes)] {
            var session = LinkSession(localName: "jakarta", peerName: "geneva")
            _ = session.start(directory: snapshot, now: fixture.now)
            let actions = session.receive(bad, directory: snapshot, now: fixture.now)
            #expect(actions.contains { if case .close = $0 { true } else { false } })
            #expect(!session.established)
        }
        var session = LinkSession(localName: "jakarta", peerName: "geneva")
        _ = session.start(directory: snapshot, now: fixture.now)
        var other = welcome(1, count: snapshot.count, head: snapshot.state.headHash.bytes)
        other.welcome.protocolVersion = 2
        #expect(session.receive(other, directory: snapshot, now: fixture.now).contains { if case .close = $0 { true } else { false } })
    }

    @Test("forwards carry durations, not clock readings; the window bounds what is in flight; COMMITTED completes as transferred")
    func forwardWindow() throws {
        var (session, snapshot) = established()
        let now = fixture.now
        let envelopes = [
            LinkFixture.envelope("bob@geneva", precedence: .flash, arrivedAt: now - 30, expiresAt: now + 3600),
            LinkFixture.envelope("bob@geneva", arrivedAt: now - 5, expiresAt: now + 100),
        ]
        let requests = sent(session.loaded(envelopes, limit: 2, directory: snapshot, now: now))
        #expect(requests.count == 2)
        let first = requests[0].forward
        #expect(first.ageSeconds == 30 && first.remainingSeconds == 3600 && first.hops == 1)
        #expect(first.recipient == "bob@geneva" && first.precedence == .flash && first.originDirectoryCount == UInt64(snapshot.count))
        #expect(session.inFlight.count == 2)
        // The window is full: a wake loads nothing more.
        #expect(session.wake(now: now).isEmpty)

        let actions = session.receive(result(requests[0], .committed), directory: snapshot, now: now)
        let completions = actions.compactMap { if case .complete(let c) = $0 { c } else { nil } }.flatMap { $0 }
        #expect(completions == [ForwardCompletion(id: envelopes[0].id, destination: "geneva", outcome: .transferred)])
        // Room again: the next load leaves out what is still in flight, and the one answered
        // whose completion the store has not committed yet (it is still queued there).
        let load = actions.compactMap { if case .load(let excluding, let limit) = $0 { (excluding, limit) } else { nil } }.first
        #expect(load?.0 == [envelopes[1].id, envelopes[0].id] && load?.1 == 1)
        #expect(sent(session.loaded([envelopes[0]], limit: 1, directory: snapshot, now: now)).isEmpty, "an answered envelope never goes twice")
        #expect(session.completing == [envelopes[0].id])
        _ = session.completionsCommitted([envelopes[0].id], now: now)
        #expect(session.completing.isEmpty)
    }

    @Test("an expired envelope is not sent; a permanent refusal records undeliverable with its reason")
    func expiredAndPermanent() {
        var (session, snapshot) = established()
        let now = fixture.now
        let expired = LinkFixture.envelope("bob@geneva", arrivedAt: now - 7200, expiresAt: now)
        #expect(sent(session.loaded([expired], limit: 2, directory: snapshot, now: now)).isEmpty)

        let revoked = LinkFixture.envelope("bob@geneva", arrivedAt: now, expiresAt: now + 60)
        let done = LinkFixture.envelope("bob@geneva", arrivedAt: now, expiresAt: now + 60)
        let requests = sent(session.loaded([revoked, done], limit: 2, directory: snapshot, now: now))
        var actions = session.receive(result(requests[0], .permanent, .recipientRevoked), directory: snapshot, now: now)
        var completions = actions.compactMap { if case .complete(let c) = $0 { c } else { nil } }.flatMap { $0 }
        #expect(completions == [ForwardCompletion(id: revoked.id, destination: "geneva", outcome: .undeliverable(.recipientRevoked))])
        // ALREADY_DONE: an earlier copy was committed there; custody passed.
        actions = session.receive(result(requests[1], .permanent, .alreadyDone), directory: snapshot, now: now)
        completions = actions.compactMap { if case .complete(let c) = $0 { c } else { nil } }.flatMap { $0 }
        #expect(completions == [ForwardCompletion(id: done.id, destination: "geneva", outcome: .transferred)])
    }

    @Test("a temporary refusal holds back that envelope only, until its wait is over; NOT_HOME asks the shell to re-route")
    func temporary() {
        var (session, snapshot) = established()
        let now = fixture.now
        let full = LinkFixture.envelope("bob@geneva", arrivedAt: now, expiresAt: now + 3600)
        let moved = LinkFixture.envelope("alice@jakarta", arrivedAt: now, expiresAt: now + 3600)
        let requests = sent(session.loaded([full, moved], limit: 2, directory: snapshot, now: now))
        var actions = session.receive(result(requests[0], .temporary, .mailboxFull), directory: snapshot, now: now)
        #expect(!actions.contains { if case .complete = $0 { true } else { false } })
        let load = actions.compactMap { if case .load(let excluding, _) = $0 { excluding } else { nil } }.first
        #expect(load?.contains(full.id) == true, "the refused envelope waits; the others go on")
        _ = session.loaded([], limit: 1, directory: snapshot, now: now)

        actions = session.receive(result(requests[1], .temporary, .notHome, home: "hq"), directory: snapshot, now: now)
        #expect(actions.contains { if case .notHome(let id, let mailbox, let home) = $0 { id == moved.id && mailbox.name == "alice@jakarta" && home == "hq" } else { false } })

        // After the wait both may go again.
        let later = session.tick(now: now + LinkSession.Settings().retryAfterTemporarySeconds)
        let again = later.compactMap { if case .load(let excluding, _) = $0 { excluding } else { nil } }.first
        #expect(again?.isEmpty == true)
    }

    @Test("directory: a peer behind gets the entries it lacks; a peer ahead is fetched from; same count, another head is a fork")
    func directoryExchange() {
        var fixture = self.fixture
        fixture.enroll("dalia@geneva", home: "geneva")
        let ours = fixture.snapshot(as: "jakarta")
        var session = LinkSession(localName: "jakarta", peerName: "geneva")
        let hello = sent(session.start(directory: ours, now: fixture.now))
        let behind = ours.count - 1
        let actions = session.receive(welcome(hello[0].requestID, count: behind, head: ours.verifier.hashes[behind - 1].bytes),
                                      directory: ours, now: fixture.now)
        let push = sent(actions).first { if case .directoryPush = $0.body { true } else { false } }
        #expect(push?.directoryPush.since == UInt64(behind))
        #expect(push?.directoryPush.entries.map { Array($0) } == [ours.encodedEntries[behind]])

        // Ahead: fetch from our count on.
        let short = fixture.snapshot(as: "jakarta", count: behind)
        var fetching = LinkSession(localName: "jakarta", peerName: "geneva")
        let hello2 = sent(fetching.start(directory: short, now: fixture.now))
        let fetched = sent(fetching.receive(welcome(hello2[0].requestID, count: ours.count, head: ours.state.headHash.bytes),
                                            directory: short, now: fixture.now))
        #expect(fetched.contains { if case .directoryFetch(let fetch) = $0.body { fetch.since == UInt64(behind) } else { false } })

        // Same count, another head.
        var forked = LinkSession(localName: "jakarta", peerName: "geneva")
        let hello3 = sent(forked.start(directory: ours, now: fixture.now))
        let alarm = forked.receive(welcome(hello3[0].requestID, count: ours.count, head: [UInt8](repeating: 9, count: 32)),
                                   directory: ours, now: fixture.now)
        #expect(alarm.contains { if case .fork = $0 { true } else { false } })
        #expect(forked.directoryExchangeStopped)
    }

    @Test("caught up, a new envelope goes straight out without a load; one committed during a load is never missed")
    func offers() {
        var (session, snapshot) = established()
        let now = fixture.now
        // A load is running (established() started one): an offer now only marks it.
        let early = LinkFixture.envelope("bob@geneva", arrivedAt: now, expiresAt: now + 60)
        #expect(sent(session.offer(early, directory: snapshot, now: now)).isEmpty)
        // That load saw nothing; the queue may hold the offered one: load again.
        let again = session.loaded([], limit: 2, directory: snapshot, now: now)
        #expect(again.contains { if case .load = $0 { true } else { false } })
        // This one finds the queue empty: caught up (the blob lane may look for work now);
        // the next offer goes at once.
        #expect(session.loaded([], limit: 2, directory: snapshot, now: now).allSatisfy { if case .loadBlobs = $0 { true } else { false } })
        let late = LinkFixture.envelope("bob@geneva", precedence: .flash, arrivedAt: now, expiresAt: now + 60)
        let direct = sent(session.offer(late, directory: snapshot, now: now))
        #expect(direct.count == 1 && direct[0].forward.id == Data(late.id.bytes))
    }

    @Test("an answer to no outstanding request closes the link; an unasked error (a peer shutting down) ends it quietly")
    func unexpectedAnswer() {
        var (session, snapshot) = established()
        #expect(session.receive(welcome(999, count: 1, head: []), directory: snapshot, now: fixture.now)
            .contains { if case .close = $0 { true } else { false } })
        var (ending, _) = established()
        let shutdown = LinkRequestProcessor.error(0, .shuttingDown, "the relay is shutting down")
        #expect(ending.receive(shutdown, directory: snapshot, now: fixture.now)
            .contains { if case .peerClosing(let reason) = $0 { reason.contains("shutting down") } else { false } })
        #expect(ending.closed)
    }
}

@Suite("Relay link: backoff")
struct LinkBackoffTests {
    @Test("delays stay within a bound that doubles to the cap, and start over after a link stayed up")
    func backoff() {
        var backoff = LinkBackoff(initial: 1, maximum: 8, stableAfter: 60)
        #expect(backoff.failed(at: 0, random: 0.999) < 1)
        #expect(backoff.failed(at: 1, random: 0.5) == 1)
        #expect(backoff.failed(at: 2, random: 0.5) == 2)
        #expect(backoff.failed(at: 3, random: 0.5) == 4)
        #expect(backoff.failed(at: 4, random: 0.5) == 4, "capped at 8")
        backoff.connected(at: 10)
        #expect(backoff.failed(at: 20, random: 0.5) == 4, "up 10 s: not stable, the bound stays")
        backoff.connected(at: 30)
        #expect(backoff.failed(at: 95, random: 0.5) == 0.5, "up 65 s: starts over")
    }

    @Test("a peer seen alive (its own link to this relay got in) starts the bound over")
    func peerReachable() {
        var backoff = LinkBackoff(initial: 1, maximum: 300, stableAfter: 60)
        for second in 0..<8 { _ = backoff.failed(at: Double(second), random: 0.5) }
        #expect(backoff.failed(at: 8, random: 0.5) == 128, "eight failures: the bound is 256")
        backoff.peerReachable()
        #expect(backoff.failed(at: 9, random: 0.5) == 0.5, "after the peer connected, the bound is 1 again")
        #expect(backoff.failed(at: 10, random: 0.5) == 1, "and doubles from there")
    }
}

@Suite("Relay link: fork evidence")
struct ForkEvidenceTests {
    @Test("for each sequence where the other relay's entry differs, both entries are kept as pending-entry files; equal ones are not")
    func evidence() throws {
        let base = LinkFixture()
        var ours = base
        ours.enroll("dalia@geneva", home: "geneva")
        var theirs = base
        theirs.enroll("emeka@hq", home: nil)
        let folder = TemporaryDirectory()
        let sequence = base.entries.count
        let written = try ForkEvidenceFiles.write(
            directory: folder.path, relay: "geneva", since: sequence - 1,
            theirs: [Data(base.entries[sequence - 1].encoded()), Data(theirs.entries[sequence].encoded())],
            ours: ours.snapshot(as: "jakarta"), now: 1000)
        #expect(written == 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.file(ForkEvidenceFiles.folder)).sorted()
        #expect(files == ["\(sequence)-geneva-1000-ours.pending", "\(sequence)-geneva-1000-theirs.pending"])
        let kept = try DirectoryFiles.decodePending(Array(try Data(contentsOf: URL(fileURLWithPath: folder.file("\(ForkEvidenceFiles.folder)/\(files[1])")))))
        #expect(kept == theirs.entries[sequence])
    }
}
