import Testing
import ValiseTestSupport
import ValiseCrypto
@testable import ValiseWire

@Suite("Connection: the client against a wrong or misbehaving relay")
struct ClientConnectionStateTests {
    /// A client that has sent its first message to a relay pinned as `relayKey`.
    static func startedClient(pinning relayKey: AgreementPublicKey) -> (ClientConnectionState, first: [UInt8]) {
        var client = ClientConnectionState(
            clientKey: AgreementPrivateKey(), relayKey: relayKey, maximumMessageLength: 1 << 20)
        let actions = client.start()
        return (client, actions.first?.written ?? [])
    }

    /// The reply (framed) of a genuine relay with `key` to a client that pinned `key`.
    static func replyOfRelay(_ key: AgreementPrivateKey) throws -> [UInt8] {
        var relay = RelayConnectionState(relayKey: key, maximumMessageLength: 1 << 20)
        let (_, first) = startedClient(pinning: key.publicKey)
        return try #require(relay.receive(first).first?.written)
    }

    static func expectClosedMentioningBundle(_ actions: [ClientConnectionState.Action], _ comment: Comment? = nil) {
        #expect(actions.count == 1, comment)
        let reason = actions.first?.closeReason ?? ""
        #expect(reason.contains("organisation bundle"), comment)
    }

    @Test("a relay holding another static key than the pinned one is refused, naming the bundle")
    func impostorRelay() throws {
        let pinned = AgreementPrivateKey()
        let impostor = AgreementPrivateKey()
        var (client, first) = Self.startedClient(pinning: pinned.publicKey)

        // The impostor cannot read the first message at all; it says nothing and closes.
        var impostorRelay = RelayConnectionState(relayKey: impostor, maximumMessageLength: 1 << 20)
        #expect(impostorRelay.receive(first) == [.close(.unknownPeer)])

        // Whatever second message it sends instead (here a well-formed one from a
        // handshake under its own key) does not authenticate.
        Self.expectClosedMentioningBundle(client.receive(try Self.replyOfRelay(impostor)))
        #expect(!client.isEstablished)
        #expect(client.send([1]) == [])
        #expect(client.receive(try Self.replyOfRelay(pinned)) == [], "closed for good")
    }

    @Test("a genuine relay's reply to another connection does not authenticate either")
    func replyFromAnotherConnection() throws {
        let relayKey = AgreementPrivateKey()
        var (client, _) = Self.startedClient(pinning: relayKey.publicKey)
        // The same relay key, but the reply answers someone else's ephemeral key.
        Self.expectClosedMentioningBundle(client.receive(try Self.replyOfRelay(relayKey)))
    }

    @Test("a damaged second handshake message closes, naming the bundle")
    func damagedReply() throws {
        let relayKey = AgreementPrivateKey()
        var rng = SplitMix64(seed: 31)
        for damage in 0..<6 {
            var relay = RelayConnectionState(relayKey: relayKey, maximumMessageLength: 1 << 20)
            var (client, first) = Self.startedClient(pinning: relayKey.publicKey)
            var reply = try #require(relay.receive(first).first?.written)
            switch damage {
            case 0: reply[2] ^= 1  // the relay's ephemeral key
            case 1: reply[reply.count - 1] ^= 0x80  // the tag
            case 2: reply = FrameDecoder.frame(Array(reply.dropFirst(2).dropLast()))  // truncated
            case 3: reply = FrameDecoder.frame(Array(reply.dropFirst(2)) + [0])  // extended
            case 4: reply = FrameDecoder.frame(rng.bytes(1152))  // random
            default: reply = FrameDecoder.frame([UInt8](repeating: 0, count: 1152))  // small-order key
            }
            Self.expectClosedMentioningBundle(client.receive(reply), "damage \(damage)")
        }
    }

    @Test("the relay speaking before the client's first message closes the connection")
    func relaySpeaksFirst() throws {
        var client = ClientConnectionState(
            clientKey: AgreementPrivateKey(), relayKey: AgreementPrivateKey().publicKey, maximumMessageLength: 1 << 20)
        // Half a frame is not yet anything.
        #expect(client.receive([0x00]) == [])
        let actions = client.receive([0x03, 1, 2, 3])
        #expect(actions.count == 1)
        #expect(actions.first?.closeReason?.contains("spoke first") == true)
        #expect(client.start() == [], "closed: no first message is sent")
        #expect(!client.isEstablished)
    }

    @Test("garbage, an empty frame or an oversized message after the handshake close the client")
    func misbehaviourAfterHandshake() throws {
        for misbehaviour in 0..<3 {
            var link = Link(clientMaximum: 1_000)
            link.handshake()
            link.admit()
            #expect(link.client.isEstablished)
            let actions: [ClientConnectionState.Action]
            switch misbehaviour {
            case 0: actions = link.client.receive(FrameDecoder.frame([UInt8](repeating: 0x55, count: 40)))
            case 1: actions = link.client.receive([0, 0])
            default:
                link.relaySends([UInt8](repeating: 1, count: 1_001))
                actions = link.client.receive(link.toClient.take(link.toClient.count))
            }
            #expect(actions.count == 1, "case \(misbehaviour)")
            #expect(actions.first?.closeReason?.contains("protocol violation") == true, "case \(misbehaviour)")
            #expect(link.client.receive(FrameDecoder.frame([1])) == [])
        }
    }

    @Test("start() writes the first message once")
    func startOnce() throws {
        var client = ClientConnectionState(
            clientKey: AgreementPrivateKey(), relayKey: AgreementPrivateKey().publicKey, maximumMessageLength: 1 << 20)
        let first = client.start()
        #expect(first.count == 1 && first.first?.written?.count == 8 + 2 + 1248, "the preamble and frame 1")
        #expect(client.start() == [])
    }
}
