import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore

/// The messaging core without a relay: MessagingWorld plays the relay's part (bundles and
/// envelopes handed over in memory), so each rule is seen from the devices' side only.
/// Directory rules, the local store and key rotation are in MessengerTests+Rules.swift.
@Suite("Messenger")
struct MessengerTests {
    // MARK: Delivery

    @Test("a message goes from alice to bob, is read, and bob's receipt marks it delivered")
    func roundTrip() throws {
        let world = try MessagingWorld()
        let (alice, bob) = (world.alice, world.bob)
        let upload = try bob.messenger.preparePrekeys(newOneTimePrekeys: 5, newOneTimeKEMPrekeys: 5, now: world.now)
        let bundle = try alice.messenger.checkBundle(
            member: bob.name, identityKey: bob.publicKey.bytes, signedPrekey: upload.signedPrekey.bytes,
            signedPrekeySignature: upload.signedPrekeySignature.bytes, envelopeKey: upload.envelopeKey.bytes,
            envelopeKeySignature: upload.envelopeKeySignature.bytes, oneTimePrekey: upload.oneTimePrekeys[0].bytes,
            kemPrekey: upload.oneTimeKEMPrekeys[0].key.bytes, kemPrekeySignature: upload.oneTimeKEMPrekeys[0].signature.bytes, kemPrekeyLastResort: false)
        let composed = try alice.messenger.compose("Meet at the embassy at nine.", to: [bob.name], precedence: .immediate, ttl: .week, now: world.now)
        #expect(composed.map(\.to) == [bob.name])
        #expect(composed[0].keysChanged == nil)
        #expect(try alice.messenger.sent().map(\.stateName) == ["waiting"])
        let due = try alice.messenger.unsealed(now: world.now)
        try #require(due.count == 1)
        #expect(due[0].to == bob.name && due[0].needs == .bundle)
        try alice.messenger.seal(due[0].item, to: bob.name, bundle: bundle, now: world.now)
        let ready = try alice.messenger.readyToSend(now: world.now)
        try #require(ready.count == 1)
        #expect(ready[0].to == "bob@geneva")
        let item = ready[0].item
        #expect(item.id == composed[0].id)
        try alice.messenger.accepted(item, expiresAt: world.now + 7 * 86_400, now: world.now)
        #expect(try alice.messenger.sent().map(\.stateName) == ["accepted"])

        world.now += 5
        let delivered = Messenger.Delivered(
            id: item.id, precedence: item.precedence, ttlClass: item.ttl, requestedTTLClass: item.ttl, envelope: try #require(item.envelope))
        let received = try #require(try bob.messenger.receive(delivered, now: world.now).message)
        #expect(received.text == "Meet at the embassy at nine.")
        #expect(received.from == "alice@jakarta")
        #expect(received.precedenceName == "IMMEDIATE")
        #expect(received.id == composed[0].id)
        #expect(try bob.messenger.inbox(unreadOnly: true).map(\.text) == ["Meet at the embassy at nine."])

        #expect(try bob.messenger.read(String(received.idHex.prefix(8))).text == "Meet at the embassy at nine.")
        #expect(try bob.messenger.inbox(unreadOnly: true).isEmpty)
        #expect(try bob.messenger.inbox(unreadOnly: false).map(\.read) == [true])

        // Bob's reply and his receipt both go through the session alice started.
        _ = try bob.messenger.compose("Nine is fine.", to: [alice.name], precedence: .routine, ttl: .day, now: world.now)
        let needs = try bob.messenger.unsealed(now: world.now).map(\.needs)
        #expect(!needs.isEmpty && needs.allSatisfy { $0 == .envelopeKey }, "in alice's session bob needs her envelope key only, no one-time prekey: \(needs)")
        let fromBob = try world.flush(bob)
        #expect(fromBob.map(\.kind) == [.receipt, .message])
        #expect(try world.deliver(fromBob[0]).receiptCount == 1)
        #expect(try alice.messenger.sent().map(\.stateName) == ["delivered"])
        let reply = try #require(try world.deliver(fromBob[1]).message)
        #expect(reply.text == "Nine is fine." && reply.from == "bob@geneva")
    }

    @Test("read returns the message as it now is: read")
    func readReturnsReadMessage() throws {
        let world = try MessagingWorld()
        let received = try #require(try world.deliver(try world.send("x", from: world.alice, to: world.bob)[0]).message)
        #expect(try world.bob.messenger.read(received.idHex).read)
    }

    @Test("three messages of one session received in reverse order all decrypt")
    func outOfOrder() throws {
        let world = try MessagingWorld()
        let envelopes = try world.send("one", "two", "three", from: world.alice, to: world.bob)
        try #require(envelopes.count == 3)
        let texts = try envelopes.reversed().map { try world.deliver($0).message?.text }
        #expect(texts == ["three", "two", "one"])
        #expect(try world.bob.messenger.inbox(unreadOnly: false).map(\.text) == ["three", "two", "one"])
    }

    @Test("alice and bob writing first at the same moment can both go on writing")
    func crossedFirstMessages() throws {
        let world = try MessagingWorld()
        let (alice, bob) = (world.alice, world.bob)
        // Both start a session before either has read the other's first message.
        let fromAlice = try world.send("hello bob", from: alice, to: bob)[0]
        let fromBob = try world.send("hello alice", from: bob, to: alice)[0]
        #expect(try world.deliver(fromAlice).message?.text == "hello bob")
        #expect(try world.deliver(fromBob).message?.text == "hello alice")
        _ = try alice.messenger.compose("second to bob", to: [bob.name], precedence: .routine, ttl: .day, now: world.now)
        _ = try bob.messenger.compose("second to alice", to: [alice.name], precedence: .routine, ttl: .day, now: world.now)
        for envelope in try world.flush(alice) + world.flush(bob) {
            let outcome = try world.deliver(envelope)
            #expect(outcome.refusalCode == nil, "\(envelope.kind) to \(envelope.to): \(outcome)")
        }
        #expect(try bob.messenger.inbox(unreadOnly: false).map(\.text) == ["hello bob", "second to bob"])
        #expect(try alice.messenger.inbox(unreadOnly: false).map(\.text) == ["hello alice", "second to alice"])
        #expect(try alice.messenger.sent().map(\.stateName) == ["delivered", "accepted"])
    }

    // MARK: Replays and tampering

    @Test("the same envelope delivered twice is shown once")
    func repeatedEnvelope() throws {
        let world = try MessagingWorld()
        let envelope = try world.send("once", from: world.alice, to: world.bob)[0]
        #expect(try world.deliver(envelope).message?.text == "once")
        #expect(try world.deliver(envelope).isRepeated)
        #expect(try world.bob.storedCount() == (1, 1))
    }

    @Test("starting a session deletes the one-time KEM prekey it used (with the X25519 one), in the same transaction; a last-resort KEM prekey is kept and a replay record written instead", arguments: [true, false])
    func kemPrekeyUse(withOneTimePrekey: Bool) throws {
        let world = try MessagingWorld()
        world.withOneTimePrekeys = withOneTimePrekey
        let envelope = try world.send("first", from: world.alice, to: world.bob)[0]
        func held() throws -> (oneTime: Int, kemOneTime: Int, kemLastResort: Int) {
            try world.bob.messenger.store.read("count prekeys") { tx in
                (try tx.prekeyCount(.oneTime), try tx.prekeyCount(.kemOneTime), try tx.prekeyCount(.kemLastResort))
            }
        }
        let before = try held()
        #expect(before.kemOneTime >= 1 && before.kemLastResort == 1)
        #expect(try world.deliver(envelope).message?.text == "first")
        let after = try held()
        #expect(after.kemLastResort == 1, "the last-resort KEM prekey is never deleted on use")
        #expect(after.kemOneTime == before.kemOneTime - (withOneTimePrekey ? 1 : 0))
        #expect(after.oneTime == before.oneTime - (withOneTimePrekey ? 1 : 0))
    }

    @Test("a session message replayed under a new envelope id is refused", arguments: [1, 2], [true, false])
    func replayedSessionMessage(position: Int, withOneTimePrekey: Bool) throws {
        let world = try MessagingWorld()
        world.withOneTimePrekeys = withOneTimePrekey
        let envelopes = try world.send("first", "second", from: world.alice, to: world.bob)
        for envelope in envelopes { _ = try world.deliver(envelope) }
        let before = try world.bob.storedCount()

        let original = envelopes[position - 1]
        let replay = try world.reseal(try world.open(original, as: world.bob), to: world.bob, like: original)
        #expect(replay.id != original.id)
        #expect(try world.deliver(replay).refusalCode != nil)
        #expect(try world.bob.storedCount() == before)
        // The refusal left the session as it was.
        #expect(try world.deliver(try world.send("third", from: world.alice, to: world.bob)[0]).message?.text == "third")
    }

    /// The encapsulated key's ML-KEM and X25519 parts, the ciphertext, the tag.
    @Test("a sealed envelope with any byte flipped is refused and leaves the session as it was", arguments: [0, 1087, 1088, 1119, 1120, 2000, 4079, 4095])
    func tamperedEnvelope(position: Int) throws {
        let world = try MessagingWorld()
        let envelopes = try world.send("first", "second", from: world.alice, to: world.bob)
        _ = try world.deliver(envelopes[0])
        let genuine = envelopes[1]
        // It still carries the PQXDH initial header (1,729 bytes), so it fills the 4,096 bucket.
        try #require(genuine.bytes.count == 4096)

        // Under its own id: the relay never delivers two envelopes under one id, and an id
        // once refused is remembered (docs/PROTOCOL.md, "Acknowledgement").
        var bytes = genuine.bytes
        bytes[position] ^= 0x01
        let tampered = genuine.with(bytes: bytes, id: Random.bytes(count: SealedEnvelope.idByteCount))
        #expect(try world.deliver(tampered).refusalCode == "unsealable")
        #expect(try world.bob.storedCount() == (1, 1))
        #expect(try world.deliver(genuine).message?.text == "second")
    }

    @Test("a session message with a byte flipped, sealed properly to bob, is refused and changes nothing", arguments: [0, 1, 2, 40, 120, 140, 175, -1])
    func tamperedSessionMessage(position: Int) throws {
        let world = try MessagingWorld()
        // The first message starts the session; the second is decrypted in it. Both carry the
        // initial header (2 + 129 bytes), then the ratchet header (40), ciphertext and tag.
        for (index, genuine) in try world.send("first", "second", from: world.alice, to: world.bob).enumerated() {
            let contents = try world.open(genuine, as: world.bob)
            let forged = try world.reseal(contents, to: world.bob, like: genuine) { message in
                message[position < 0 ? message.count + position : position] ^= 0x01
            }
            #expect(try world.deliver(forged).refusalCode != nil)
            #expect(try world.bob.storedCount() == (index, index))
            #expect(try world.deliver(genuine).message?.text == ["first", "second"][index])
        }
    }

    @Test("an envelope for carol is refused by bob, who stores nothing, and carol still reads it")
    func envelopeForAnotherDevice() throws {
        let world = try MessagingWorld()
        _ = try world.bob.messenger.preparePrekeys(newOneTimePrekeys: 1, now: world.now)
        let forCarol = try world.send("for carol only", from: world.alice, to: world.carol)[0]
        #expect(try world.deliver(forCarol, to: world.bob).refusalCode == "unsealable")

        // Sealed to bob's envelope key, but the inside names carol as the recipient.
        let redirected = try world.reseal(try world.open(forCarol, as: world.carol), to: world.bob, like: forCarol)
        #expect(try world.deliver(redirected, to: world.bob).refusalCode == "not-for-this-device")
        #expect(try world.bob.storedCount() == (0, 0))
        #expect(try world.deliver(forCarol).message?.text == "for carol only")
    }
}
