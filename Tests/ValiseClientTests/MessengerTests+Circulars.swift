import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore

/// Circulars seen from the devices: one message per recipient, each carrying the
/// selector; the sender's outbox groups them.
extension MessengerTests {
    @Test("a circular writes one message per recipient with the selector inside, and the sender sees it as one item")
    func circular() throws {
        let world = try MessagingWorld()
        let (alice, bob, carol) = (world.alice, world.bob, world.carol)
        let selector = try RecipientSelector(parsing: "role:attaché")
        let recipients = try selector.resolve(in: alice.messenger.directory.state, sender: alice.name)
        #expect(recipients == [bob.name, carol.name])
        let composed = try alice.messenger.compose(
            "The ambassador's reception is moved to Friday.", to: recipients, circular: selector.text, precedence: .priority, ttl: .week, now: world.now)
        #expect(composed.count == 2)
        let circularID = try #require(composed[0].circular)
        #expect(circularID.count == Messenger.circularIDByteCount)
        #expect(composed[1].circular == circularID)
        #expect(composed[0].id != composed[1].id)

        let envelopes = try world.flush(alice).filter { $0.kind == .message }
        #expect(envelopes.map(\.to).sorted() == ["bob@geneva", "carol@geneva"])
        for envelope in envelopes {
            let recipient = world.device(envelope.to)
            let message = try #require(try world.deliver(envelope).message)
            #expect(message.circular == "role:attaché")
            #expect(message.text == "The ambassador's reception is moved to Friday.")
            #expect(try recipient.messenger.inbox(unreadOnly: false).first?.circular == "role:attaché")
        }

        let items = try alice.messenger.sentItems()
        try #require(items.count == 1)
        guard case .circular(let circular) = items[0] else {
            Issue.record("not grouped: \(items)")
            return
        }
        #expect(circular.id == circularID)
        #expect(circular.selector == "role:attaché")
        #expect(circular.messages.count == 2)
        #expect(circular.counts == [.accepted: 2])
        #expect(circular.countsDescription == "accepted 2")

        // Bob's receipt moves his message only.
        world.now += 5
        for receipt in try world.flush(bob) where receipt.kind == .receipt { _ = try world.deliver(receipt) }
        guard case .circular(let after) = try alice.messenger.sentItems()[0] else { return }
        #expect(after.countsDescription == "accepted 1, delivered 1")

        // By its id, or any of its messages' ids.
        guard case .circular(let found) = try alice.messenger.sentItem(String(circular.idHex.prefix(8))) else {
            Issue.record("the circular's id does not find it")
            return
        }
        #expect(found.messages.count == 2)
        guard case .message(let one) = try alice.messenger.sentItem(String(Hex.encode(composed[0].id).prefix(8))) else {
            Issue.record("a message's id does not find it")
            return
        }
        #expect(one.circular == circularID && one.selector == "role:attaché")
    }

    @Test("a plain message carries no circular, and is listed on its own")
    func plainIsNotCircular() throws {
        let world = try MessagingWorld()
        let envelopes = try world.send("Plain note.", from: world.alice, to: world.bob)
        let message = try #require(try world.deliver(envelopes[0]).message)
        #expect(message.circular == nil)
        guard case .message(let sent)? = try world.alice.messenger.sentItems().first else {
            Issue.record("a plain message shows as a circular")
            return
        }
        #expect(sent.circular == nil && sent.selector == nil)
    }
}
