import Foundation
import Testing
import ValiseCrypto
import ValiseWire

// The remaining limits, each tripped from 127.0.0.2 and up while Alice (and Bob) on
// 127.0.0.1 go on: connections per address, the handshake rate, the relay's total, the
// mailbox quota, the envelope size, the prekey fetch rate and a client that never reads.
extension AbuseLimitTests {
    @Test("connections per address: past the limit, more connections from 127.0.0.2 are answered BUSY and closed at once; the open ones and 127.0.0.1 go on")
    func connectionsPerAddress() async throws {
        let world = try RelayWorld(relayEnvironment: ["VALISED_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "3"])
        var held = try (0..<3).map { _ in try world.admittedClient(from: "127.0.0.2", member: "carol@nairobi") }
        for _ in 0..<3 {
            let extra = try HostileSocket(from: "127.0.0.2", to: world.relay.port)
            let outcome = extra.waitForClose(within: 3)
            #expect(outcome.closed && outcome.received == RelayPreambleTests.busyNotice, "a 4th connection from 127.0.0.2 was kept, or not told BUSY (\(outcome))")
            #expect(outcome.seconds < 1, "closed after \(outcome.seconds) s, not at once")
        }
        try await Self.bystanderSends(world)
        try await world.expectStatus("the refused connections were not counted") { Self.limitCount($0, "connectionsPerAddress") == 3 }
        // The three admitted connections were not touched; once one closes, there is room again.
        for index in held.indices { try Self.expectAnswersPing(held[index].0, &held[index].1) }
        held[0].0.close()
        #expect(world.eventually(within: 5) { (try? world.admittedClient(from: "127.0.0.2", member: "carol@nairobi")) != nil },
                "no room for 127.0.0.2 after one of its connections closed")
    }

    @Test("handshake rate: a burst of new connections from 127.0.0.3 past the bucket is closed at once; 127.0.0.1 connects and sends")
    func handshakeRate() async throws {
        // One new connection per 5 s after a burst of 4: nothing refills while the test runs.
        let world = try RelayWorld(relayEnvironment: [
            "VALISED_LIMITS_HANDSHAKES_PER_SECOND_PER_ADDRESS": "0.2", "VALISED_LIMITS_HANDSHAKE_BURST_PER_ADDRESS": "4",
        ])
        let sockets = try (0..<12).map { _ in try HostileSocket(from: "127.0.0.3", to: world.relay.port, wait: false) }
        for socket in sockets { #expect(socket.finishConnecting(within: 3), "connect from 127.0.0.3") }
        // The refused are told BUSY and closed at once; the admitted wait for a handshake
        // (10 s by default).
        let refused = sockets.filter { socket in
            let outcome = socket.waitForClose(within: 0.5)
            return outcome.closed && outcome.received == RelayPreambleTests.busyNotice
        }.count
        #expect(refused == 8, "\(12 - refused) of 12 connections from 127.0.0.3 admitted with a burst of 4")
        // The bucket is empty for 127.0.0.3 but not for 127.0.0.1.
        #expect(throws: HostileSocket.Failure.self) { try world.admittedClient(from: "127.0.0.3", member: "carol@nairobi") }
        try await Self.bystanderSends(world)
        try await world.expectStatus("the refused connections were not counted") { Self.limitCount($0, "handshakeRate") == refused + 1 }
        for socket in sockets { socket.close() }
    }

    @Test("total connections: 127.0.0.2 to .5 fill the relay; a bystander is refused too (a total is a total); once they close, 127.0.0.1 gets in")
    func totalConnections() async throws {
        // Half-open connections held for the whole test, not ended by the handshake timer.
        let world = try RelayWorld(relayEnvironment: [
            "VALISED_LIMITS_MAX_CONNECTIONS": "4", "VALISED_LIMITS_HANDSHAKE_TIMEOUT_SECONDS": "60",
        ])
        // The admin's publish (from 127.0.0.1) must have left before the abusers come.
        let quiet = world.eventually(within: 5) {
            let lines = world.relayLog(peer: "127.0.0.1")
            return lines.filter { $0.contains("connection opened") }.count == lines.filter { $0.contains("connection closed") }.count
        }
        #expect(quiet, "the admin's connection is still open")
        let abusers = try (2...5).map { try HostileSocket(from: "127.0.0.\($0)", to: world.relay.port) }
        // The relay admits connections on several event loops, not in the order they came:
        // the four must be in before a fifth comes.
        let filled = world.eventually(within: 5) {
            (2...5).allSatisfy { world.relayLog(peer: "127.0.0.\($0)").contains { $0.contains("connection opened") } }
        }
        #expect(filled, "the relay did not take the four connections")
        let fifth = try HostileSocket(from: "127.0.0.6", to: world.relay.port).waitForClose(within: 3)
        #expect(fifth.closed && fifth.seconds < 1, "a fifth connection was kept (\(fifth))")
        #expect(!abusers.contains { $0.isClosed }, "an abuser's connection was closed")

        // What the bystander sees: its connection closed at once, and a sync that fails.
        let refused = try HostileSocket(from: "127.0.0.1", to: world.relay.port).waitForClose(within: 3)
        #expect(refused.closed && refused.seconds < 1, "127.0.0.1 got in past a full relay (\(refused))")
        let sync = try ValiseCLI.run(["sync", "--home", world.path("alice@jakarta"), "--relay", world.relay.address, "--json"],
                                     environment: ["VALISE_PASSPHRASE": world.passphrase], timeout: 30)
        #expect(sync.status != 0, "alice synced with a full relay")
        // Regression: the error once blamed only the relay's key, sending people after an
        // impostor when the relay was merely full; now the relay says BUSY.
        #expect(sync.stderr.contains(RelayPreambleTests.busyLine), "alice was told: \(sync.stderr)")
        #expect(!sync.stderr.contains("impostor"), "alice was told: \(sync.stderr)")
        try await world.expectStatus("the refused connections were not counted") { (Self.limitCount($0, "connections") ?? 0) >= 3 }

        for socket in abusers { socket.close() }
        let released = world.eventually(within: 5) {
            (2...5).allSatisfy { world.relayLog(peer: "127.0.0.\($0)").contains { $0.contains("connection closed") } }
        }
        #expect(released, "the relay did not see the abusers leave")
        try await Self.bystanderSends(world)
    }

    @Test("mailbox quota: 127.0.0.2 fills Bob's mailbox (MAILBOX_FULL); Alice's sends to Carol from 127.0.0.1 are accepted")
    func mailboxQuota() async throws {
        var (world, socket, abuser) = try Self.abuser(["VALISED_QUEUE_MAX_MESSAGES_PER_MAILBOX": "5"])
        let sends = (0..<8).map { Self.sendMessage(UInt64(100 + $0), to: "bob@jakarta") }
        let answers = try Self.exchange(socket, &abuser, sends)
        let accepted = answers.filter { if case .accepted? = $0 { true } else { false } }.count
        #expect(accepted == 5, "answers: \(answers)")
        #expect(answers.compactMap(Self.errorCode) == Array(repeating: .mailboxFull, count: 3), "answers: \(answers)")
        try Self.expectAnswersPing(socket, &abuser)

        try await Self.bystanderSends(world, to: "carol@nairobi")
        // The quota is the recipient's: Bob's mailbox is full for every sender until he acks.
        let alice = try await QueueDevice(world: world, member: "alice@jakarta")
        #expect(await alice.send(QueueFixture.id(), to: "bob@jakarta").isRefused(.mailboxFull))
        await alice.close()
        try await world.expectStatus("the refused sends were not counted") {
            Self.limitCount($0, "mailboxFull") == 4 && $0["envelopes"] as? Int == 10
        }
    }

    @Test("too large: 127.0.0.2's oversize envelopes are TOO_LARGE and its connection stays usable; 127.0.0.1 sends on")
    func tooLarge() async throws {
        var (world, socket, abuser) = try Self.abuser(["VALISED_LIMITS_MAX_ENVELOPE_BYTES": "1024"])
        let sends = [1025, 4096, 1024, 60_000, 10].enumerated().map { Self.sendMessage(UInt64(100 + $0.offset), to: "bob@jakarta", envelopeBytes: $0.element) }
        let answers = try Self.exchange(socket, &abuser, sends)
        #expect(answers.map(Self.errorCode) == [.tooLarge, .tooLarge, nil, .tooLarge, nil], "answers: \(answers)")
        try Self.expectAnswersPing(socket, &abuser)
        try await Self.bystanderSends(world)
        try await world.expectStatus("the refused envelopes were not counted") {
            Self.limitCount($0, "tooLarge") == 3 && $0["envelopes"] as? Int == 7
        }
    }

    @Test("prekey limits: 127.0.0.2 fetching Bob's bundle again and again gets one one-time prekey, then bundles without one, then RATE_LIMITED past its member rate; Alice still gets one; all counted")
    func prekeyFetchRate() async throws {
        var (world, socket, abuser) = try Self.abuser([
            "VALISED_LIMITS_PREKEY_MEMBERS_PER_MINUTE": "0.01", "VALISED_LIMITS_PREKEY_MEMBER_BURST": "100",
        ])
        let bob = try await QueueDevice(world: world, member: "bob@jakarta")
        _ = try await QueueTests().upload(bob, identity: try world.identityKey("bob@jakarta"), signedPrekey: AgreementPrivateKey(),
                                          envelopeKey: XWingPrivateKey(), oneTime: (0..<10).map { _ in AgreementPrivateKey() })
        await bob.close()
        let fetches = (0..<102).map { index in
            var message = WireClientMessage()
            message.requestID = UInt64(100 + index)
            message.prekeyFetch = WirePrekeyFetch()
            message.prekeyFetch.members = ["bob@jakarta"]
            return message
        }
        let answers = try Self.exchange(socket, &abuser, fetches)
        let bundles = answers.compactMap { body -> WirePrekeyBundle? in if case .prekeyBundles(let answer)? = body { answer.bundles.first } else { nil } }
        #expect(bundles.count == 100, "\(bundles.count) bundles, errors: \(answers.compactMap(Self.errorCode))")
        #expect(bundles.filter { !$0.oneTimePrekey.isEmpty }.count == 1, "one-time prekeys handed to one device: \(bundles.map(\.oneTimePrekeysLeft))")
        #expect(answers.compactMap(Self.errorCode) == [.rateLimited, .rateLimited], "errors: \(answers.compactMap(Self.errorCode))")

        // Alice's device has its own allowance, and Bob's one-time prekeys are not drained.
        let alice = try await QueueDevice(world: world, member: "alice@jakarta")
        let bundle = try await QueueTests().fetchBundle(alice, "bob@jakarta")
        #expect(bundle.oneTimePrekey.count == 32 && bundle.oneTimePrekeysLeft == 8, "\(bundle)")
        await alice.close()
        try await world.expectStatus("the withheld one-time prekeys and refused fetches were not counted") {
            Self.limitCount($0, "oneTimePrekeyPerMember") == 99 && Self.limitCount($0, "prekeyFetchRate") == 2
        }
    }

    @Test("one-time prekey rate: a device past limits.oneTimePrekeysPerMinute gets bundles without one (counted), never RATE_LIMITED")
    func oneTimePrekeyRate() async throws {
        let world = try RelayWorld(relayEnvironment: [
            "VALISED_LIMITS_ONE_TIME_PREKEYS_PER_MINUTE": "0.01", "VALISED_LIMITS_ONE_TIME_PREKEY_BURST": "1",
        ])
        for member in ["alice@jakarta", "bob@jakarta"] {
            let device = try await QueueDevice(world: world, member: member)
            _ = try await QueueTests().upload(device, identity: try world.identityKey(member), signedPrekey: AgreementPrivateKey(),
                                              envelopeKey: XWingPrivateKey(), oneTime: (0..<3).map { _ in AgreementPrivateKey() })
            await device.close()
        }
        let carol = try await QueueDevice(world: world, member: "carol@nairobi")
        let first = try await QueueTests().fetchBundle(carol, "alice@jakarta")
        let second = try await QueueTests().fetchBundle(carol, "bob@jakarta")
        #expect(first.oneTimePrekey.count == 32 && first.oneTimePrekeysLeft == 2, "\(first)")
        #expect(second.oneTimePrekey.isEmpty && second.oneTimePrekeysLeft == 3, "the device's second one-time prekey in its burst of 1: \(second)")
        await carol.close()
        try await world.expectStatus("the withheld one-time prekey was not counted") { Self.limitCount($0, "oneTimePrekeyRate") == 1 }
    }

    @Test("slow reader: 127.0.0.2 asks and never reads; the relay stops reading it, its memory stays bounded, and Alice and Bob exchange meanwhile")
    func slowReader() async throws {
        var (world, socket, abuser) = try Self.abuser(["VALISED_LIMITS_FRAME_TIMEOUT_SECONDS": "60"])
        let rssBefore = world.relay.residentKiB
        var peak = rssBefore
        // Directory fetches (a few dozen bytes each, answered with the whole directory) until
        // the relay has taken nothing for a second: it stopped reading a client that does not
        // read. A relay that went on reading would queue every answer: 24 MiB is far above
        // one write buffer (64 KiB) and would show that.
        let bound = 24 * 1024
        var (pending, nextID, stalledSince) = ([UInt8](), UInt64(100), Date?.none)
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline && peak - rssBefore <= bound {
            if pending.isEmpty { pending = try abuser.directoryFetches(1_000, nextID: &nextID) }
            let written = socket.sendSome(pending)
            guard written >= 0 else { break }
            peak = max(peak, world.relay.residentKiB)
            if written > 0 {
                pending.removeFirst(written)
                stalledSince = nil
            } else if let since = stalledSince, Date().timeIntervalSince(since) > 1 {
                break
            } else {
                stalledSince = stalledSince ?? Date()
                socket.waitWritable(milliseconds: 20)
            }
        }
        #expect(stalledSince != nil, "the relay kept reading a client that reads nothing (\(nextID - 100) requests written)")
        try await world.expectStatus("the slow reader was not counted") { (Self.limitCount($0, "slowReader") ?? 0) > 0 }

        // Meanwhile, with the abuser's answers still unread: Alice and Bob send and receive.
        let alice = try await QueueDevice(world: world, member: "alice@jakarta")
        let bob = try await QueueDevice(world: world, member: "bob@jakarta")
        let (toBob, toAlice) = (QueueFixture.id(), QueueFixture.id())
        try await alice.sendAccepted(toBob, to: "bob@jakarta")
        try await bob.sendAccepted(toAlice, to: "alice@jakarta")
        try await alice.fetch()
        try await bob.fetch()
        #expect(await bob.deliveries(atLeast: 1).map(\.id) == [Data(toBob)])
        #expect(await alice.deliveries(atLeast: 1).map(\.id) == [Data(toAlice)])
        await alice.close()
        await bob.close()
        peak = max(peak, world.relay.residentKiB)
        print("slow reader: \(nextID - 100) directory fetches written; relay RSS \(rssBefore) KiB before, peak \(peak) KiB")
        #expect(peak - rssBefore <= bound, "RSS grew by \(peak - rssBefore) KiB for one connection")
        #expect(!socket.isClosed, "the abuser was disconnected rather than held")
        socket.close()
    }
}
