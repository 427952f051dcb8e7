import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore

// The labels a relay delivers an envelope with are the sealed envelope's associated data:
// a relay that changes any of them gets the envelope refused, except a TTL class it
// shortened (its maximum may cap the sender's), which the recipient accepts.
extension MessengerTests {
    @Test("a relay that relabels an envelope (precedence, TTL class asked) or lengthens its TTL gets it refused; a shortened TTL is accepted")
    func relabelledByTheRelay() throws {
        let world = try MessagingWorld()
        let envelopes = try world.send("one", "two", "three", "four", from: world.alice, to: world.bob, precedence: .immediate)
        func relabelled(_ envelope: Envelope, precedence: UInt8? = nil, applied: UInt8? = nil, asked: UInt8? = nil) -> Envelope {
            let d = envelope.delivered
            return Envelope(to: envelope.to, kind: envelope.kind, delivered: Messenger.Delivered(
                id: d.id, precedence: precedence ?? d.precedence, ttlClass: applied ?? d.ttlClass,
                requestedTTLClass: asked ?? d.requestedTTLClass, envelope: d.envelope))
        }
        let asked = envelopes[0].delivered.requestedTTLClass
        #expect(asked == 2 && envelopes[0].delivered.precedence == 2)
        #expect(try world.deliver(relabelled(envelopes[0], precedence: 3)).refusalCode == "unsealable")
        #expect(try world.deliver(relabelled(envelopes[1], applied: asked + 1, asked: asked + 1)).refusalCode == "unsealable")
        #expect(try world.deliver(relabelled(envelopes[2], applied: asked + 1)).refusalCode == "ttl-lengthened")
        #expect(try world.deliver(relabelled(envelopes[3], applied: asked - 1)).message?.text == "four")
        #expect(try world.bob.storedCount().inbox == 1)
    }

    @Test("an envelope delivered to another member's device does not open there")
    func reRouted() throws {
        let world = try MessagingWorld()
        let envelope = try world.send("for bob", from: world.alice, to: world.bob)[0]
        #expect(try world.deliver(envelope, to: world.carol).refusalCode == "unsealable")
        #expect(try world.deliver(envelope).message?.text == "for bob")
    }
}
