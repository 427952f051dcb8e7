import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseWire

// Expiry on the relay's own clock, the signed status that reports it, and the purge of a
// revoked member's queue. Expiry needs two hours to pass for the relay only: it is
// restarted on the same directory under libfaketime with its wall clock two hours ahead
// (the monotonic clock is left alone, so NIO's timers still fire).
extension QueueTests {
    /// A world in which alice sent bob a 1 h and a 1 d envelope at `sentAt`, and the relay now
    /// runs two hours later, having swept the 1 h one.
    struct ExpiredWorld {
        let world: RelayWorld
        /// The same relay (directory and keys), restarted two hours ahead.
        let relay: FakeTimeRelay
        let hour: [UInt8]
        let day: [UInt8]
        let hourAccepted: WireAccepted
        let dayAccepted: WireAccepted
        let sentAt: ClosedRange<UInt64>
    }

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970) }

    static func expiredWorld(sourceLocation: SourceLocation = #_sourceLocation) async throws -> ExpiredWorld {
        // Checked first, so that a missing faketime fails before anything else is built.
        try FakeTimeRelay.requireInstalled(sourceLocation: sourceLocation)
        let world = try RelayWorld(members: Self.pair)
        let sender = try await QueueDevice(world: world, member: Self.alice)
        let (hour, day) = (QueueFixture.id(), QueueFixture.id())
        let before = now()
        let hourAccepted = try await sender.sendAccepted(hour, to: Self.bob, precedence: .flash, ttl: .hour, sourceLocation: sourceLocation)
        let dayAccepted = try await sender.sendAccepted(day, to: Self.bob, ttl: .day, sourceLocation: sourceLocation)
        let after = now()
        await sender.close()
        // The relay sets expiry on its own clock from the TTL class.
        #expect((before + 3600...after + 3600).contains(hourAccepted.expiresAt), "1 h: \(hourAccepted.expiresAt) for a send at \(before)", sourceLocation: sourceLocation)
        #expect((before + 86_400...after + 86_400).contains(dayAccepted.expiresAt), "1 d: \(dayAccepted.expiresAt)", sourceLocation: sourceLocation)

        #expect(world.relay.stop() == 0, sourceLocation: sourceLocation)
        let later = try FakeTimeRelay(
            offset: "+2h", directory: world.path("relay"), logPath: world.path("relay-two-hours-later.log"),
            environment: ["VALISED_QUEUE_EXPIRY_SWEEP_SECONDS": "1"], sourceLocation: sourceLocation)
        let swept = world.eventually(within: 15) { !later.logLines(containing: "expired undelivered envelopes").isEmpty }
        #expect(swept, "no expiry sweep in the log of the relay two hours later:\n\(later.log)", sourceLocation: sourceLocation)
        return ExpiredWorld(world: world, relay: later, hour: hour, day: day, hourAccepted: hourAccepted, dayAccepted: dayAccepted, sentAt: before...after)
    }

    // MARK: 7. Expiry

    @Test("expiry on the relay's clock: two hours later a 1 h envelope is never delivered, counted, and reported EXPIRED_UNDELIVERED; a 1 d one is delivered")
    func expiry() async throws {
        let expired = try await Self.expiredWorld()
        let world = expired.world
        #expect(expired.relay.logLines(containing: "expired undelivered envelopes", "envelopes=1").count == 1,
                "one sweep counted exactly one envelope:\n\(expired.relay.log)")
        let status = try world.queueStatus()
        #expect(status["envelopes"] as? Int == 1, "only the 1 d envelope is held: \(status)")
        #expect((status["remembered"] as? [String: Any])?["expiredUndelivered"] as? Int == 1, "\(status)")
        #expect((status["byPrecedence"] as? [String: Any])?["FLASH"] as? Int == 0, "the expired FLASH envelope is gone: \(status)")

        let bob = try await QueueDevice(world: world, member: Self.bob, port: expired.relay.port)
        try await bob.fetch()
        let delivered = await bob.deliveries(exactly: 1)
        #expect(delivered.map(\.id) == [Data(expired.day)], "the FLASH 1 h envelope is never delivered late; the 1 d one is")
        #expect(delivered.first?.expiresAt == expired.dayAccepted.expiresAt)
        // Both classes are delivered: the one applied, and the one asked (the envelope binds it).
        #expect(delivered.first?.ttl == .day && delivered.first?.requestedTtl == .day)

        let answer = try await bob.status(of: [expired.hour, expired.day], nonce: QueueFixture.bytes(32))
        let states = Dictionary(uniqueKeysWithValues: answer.statuses.map { ($0.id, $0) })
        let hour = try #require(states[Data(expired.hour)])
        #expect(hour.state == .expiredUndelivered)
        // "Since when": the sweep's time on the relay's (two hours ahead) clock, not before
        // the envelope's expiry.
        #expect(hour.time >= expired.hourAccepted.expiresAt && hour.time <= Self.now() + 2 * 3600 + 60,
                "expired at \(hour.time), expiry was \(expired.hourAccepted.expiresAt)")
        let day = try #require(states[Data(expired.day)])
        #expect(day.state == .pending)
        #expect(expired.sentAt.contains(day.time), "pending since its arrival: \(day.time), sent in \(expired.sentAt)")
        await bob.close()
        #expect(expired.relay.stop() == 0, "the relay under faketime did not stop cleanly:\n\(expired.relay.log)")
    }

    // MARK: 8. Signed status

    @Test("signed status: pending, expired and never-sent answers verify with the relay's signing key over the request's nonce; altered ones do not")
    func signedStatus() async throws {
        let expired = try await Self.expiredWorld()
        let world = expired.world
        let keys = try world.relaySigningKey()
        let neverSent = QueueFixture.id()
        let nonce = QueueFixture.bytes(32)
        let bob = try await QueueDevice(world: world, member: Self.bob, port: expired.relay.port)
        let answer = try await bob.status(of: [expired.day, expired.hour, neverSent], nonce: nonce)
        #expect(answer.statuses.map(\.id) == [Data(expired.day), Data(expired.hour), Data(neverSent)], "one answer per id, in order")
        #expect(answer.statuses.map(\.state) == [.pending, .expiredUndelivered, .unknown])
        #expect(answer.statuses.last?.time == 0, "an unknown id has no time")

        func verifies(
            _ status: WireMessageStatus, id: Data? = nil, state: WireMessageStatus.MessageState? = nil, reason: UInt8? = nil, time: UInt64? = nil,
            nonce other: [UInt8]? = nil
        ) throws -> Bool {
            let statement = MessageStatusStatement.bytes(
                relayKey: keys.noise, id: Array(id ?? status.id), state: UInt8((state ?? status.state).rawValue),
                reason: reason ?? UInt8(status.reason.rawValue), time: time ?? status.time, forwardedTo: status.forwardedTo, nonce: other ?? nonce)
            return keys.signing.isValidSignature(try Signature(bytes: Array(status.signature)), for: statement, purpose: MessageStatusStatement.purpose)
        }
        for status in answer.statuses {
            let name = "\(status.state)"
            #expect(try verifies(status), "\(name): the signature does not verify with the relay's key from the directory")
            #expect(try !verifies(status, nonce: QueueFixture.bytes(32)), "\(name): verifies for another nonce (replayable)")
            #expect(try !verifies(status, nonce: Array(nonce.dropLast())), "\(name): verifies for a shortened nonce")
            #expect(try !verifies(status, state: status.state == .pending ? .expiredUndelivered : .pending), "\(name): verifies for another state")
            #expect(try !verifies(status, time: status.time + 1), "\(name): verifies for another time")
            #expect(try !verifies(status, reason: 1), "\(name): verifies for a reason")
            #expect(try !verifies(status, id: Data(QueueFixture.id())), "\(name): verifies for another id")
        }
        // The expired one's answer cannot be passed off as pending for the same question.
        let hour = try #require(answer.statuses.first { $0.id == Data(expired.hour) })
        #expect(try !verifies(hour, state: .pending))

        // Nonces of 16 and 64 bytes are taken, shorter and longer ones refused.
        for length in [16, 64] {
            let status = try await bob.status(of: [expired.day], nonce: QueueFixture.bytes(length))
            #expect(status.statuses.count == 1, "a \(length)-byte nonce")
        }
        for length in [0, 15, 65, 200] {
            do {
                _ = try await bob.status(of: [expired.day], nonce: QueueFixture.bytes(length))
                Issue.record("a \(length)-byte nonce was taken")
            } catch {
                #expect(error.code == "relay-\(WireErrorCode.badRequest)", "a \(length)-byte nonce: \(error)")
            }
        }
        // Once delivered and acked, the relay no longer says anything about the id.
        try await bob.fetch()
        #expect(await bob.deliveries(exactly: 1).map(\.id) == [Data(expired.day)])
        try await bob.ack([Data(expired.day)])
        try await world.expectStatus("the ack was not recorded") { $0["envelopes"] as? Int == 0 }
        let delivered = try await bob.status(of: [expired.day], nonce: nonce)
        #expect(delivered.statuses.map(\.state) == [.unknown] && delivered.statuses.first?.time == 0)
        if let status = delivered.statuses.first { #expect(try verifies(status)) }
        await bob.close()
        #expect(expired.relay.stop() == 0)
    }

    // MARK: 9. Revocation

    @Test("revocation purges the member's queue (counted in the log and in valised status); later sends are UNKNOWN_RECIPIENT")
    func revocationPurge() async throws {
        let world = try RelayWorld()
        let alice = try await QueueDevice(world: world, member: Self.alice)
        var bobs: [[UInt8]] = []
        for precedence in [WirePrecedence.routine, .flash, .priority] {
            let id = QueueFixture.id()
            try await alice.sendAccepted(id, to: Self.bob, precedence: precedence)
            bobs.append(id)
        }
        let carols = QueueFixture.id()
        try await alice.sendAccepted(carols, to: Self.carol)
        #expect(try world.queuedEnvelopes() == 4)

        try world.revoke(Self.bob)
        #expect(world.eventually(within: 10) { !world.relayLogLines(containing: "purged a revoked member's queue").isEmpty },
                "no purge in the log:\n\(world.relay.log)")
        let purges = world.relayLogLines(containing: "purged a revoked member's queue")
        #expect(purges.count == 1 && purges.first?.contains("envelopes=3") == true && purges.first?.contains("member=\(Self.bob)") == true,
                "the purge names bob and counts 3: \(purges)")
        let status = try world.queueStatus()
        #expect(status["envelopes"] as? Int == 1, "only carol's envelope is left: \(status)")
        #expect(status["mailboxes"] as? Int == 1)
        #expect((status["remembered"] as? [String: Any])?["purged"] as? Int == 3, "\(status)")
        #expect((status["remembered"] as? [String: Any])?["undeliverable"] as? Int == 3, "\(status)")
        // What the relay signs for each of them now: undeliverable, the recipient revoked.
        let signed = try await alice.status(of: bobs, nonce: QueueFixture.bytes(32))
        #expect(signed.statuses.map(\.state) == [.undeliverable, .undeliverable, .undeliverable], "\(signed)")
        #expect(signed.statuses.allSatisfy { $0.reason == .recipientRevoked && $0.time > 0 && $0.forwardedTo.isEmpty }, "\(signed)")

        let after = await alice.send(QueueFixture.id(), to: Self.bob)
        #expect(after.isRefused(.unknownRecipient), "a send to the revoked member: \(String(describing: after.refusal))")
        // A retry of an id accepted for bob before the revocation stores nothing either.
        let retry = await alice.send(bobs[0], to: Self.bob)
        #expect(retry.isRefused(.unknownRecipient), "a retry to the revoked member: \(String(describing: retry.refusal))")
        #expect(try world.queuedEnvelopes() == 1)

        let carol = try await QueueDevice(world: world, member: Self.carol)
        try await carol.fetch()
        #expect(await carol.deliveries(exactly: 1).map(\.id) == [Data(carols)], "other mailboxes are untouched")
        await carol.close()
        await alice.close()
    }
}
