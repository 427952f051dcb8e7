import Testing
import ValiseTestSupport
import ValiseCrypto
@testable import ValiseWire

/// A client made from a bare HandshakeState and NoiseTransport, to send what a well-behaved
/// ClientConnectionState never would.
struct RawClient {
    let key = AgreementPrivateKey()
    var handshake: HandshakeState
    var transport: NoiseTransport?

    init(relayKey: AgreementPublicKey) throws {
        handshake = try HandshakeState(
            protocol: ValiseTransport.clientProtocol, role: .initiator, prologue: ValiseTransport.prologue, staticKey: key, remoteStaticKey: relayKey)
    }

    /// The first handshake message, framed (the relays here have read the preamble).
    mutating func first() throws -> [UInt8] { FrameDecoder.frame(try handshake.writeMessage(payload: [])) }

    /// Reads the relay's framed reply; returns the third handshake message, framed.
    mutating func third(reply: [UInt8]) throws -> [UInt8] {
        let frames = try unframe(reply)
        #expect(frames.count == 1)
        _ = try handshake.readMessage(frames[0])
        let third = try handshake.writeMessage(payload: [])
        let split: NoiseTransport = try #require(handshake.split())
        transport = split
        return FrameDecoder.frame(third)
    }

    /// One transport message with exactly this plaintext (fragment header included), framed.
    mutating func frame(plaintext: [UInt8]) throws -> [UInt8] {
        FrameDecoder.frame(try transport!.encrypt(plaintext))
    }
}

@Suite("Connection: hostile input to the relay")
struct RelayHostileInputTests {
    static func relay(maximumMessageLength: Int = ValiseTransport.defaultMaximumMessageLength) -> (AgreementPrivateKey, RelayConnectionState) {
        let key = AgreementPrivateKey()
        var relay = RelayConnectionState(relayKey: key, maximumMessageLength: maximumMessageLength)
        // Past the preamble: what follows reaches the framing and Noise layers.
        precondition(relay.receive(Preamble.client.bytes).isEmpty)
        return (key, relay)
    }

    /// A relay and a raw client through the handshake; the relay has admitted the client
    /// when `admit` is true.
    static func connected(admit: Bool = true, maximumMessageLength: Int = 1 << 20) throws -> (RelayConnectionState, RawClient) {
        var (key, relay) = relay(maximumMessageLength: maximumMessageLength)
        var client = try RawClient(relayKey: key.publicKey)
        let reply = relay.receive(try client.first())
        #expect(reply.count == 1)
        let third = try client.third(reply: try #require(reply.first?.written))
        #expect(relay.receive(third) == [.authenticate(client.key.publicKey)])
        if admit { #expect(relay.admit() == []) }
        return (relay, client)
    }

    @Test("garbage as the first frame closes as an unknown peer, without a word", arguments: [1 as UInt64, 2, 3, 4])
    func garbageFirstFrame(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let lengths = [1, 16, 31, 32, 47, 48, 49, 64, 80, 1_000, 1_247, 1_248, 1_249, 65_535, rng.int(in: 1...4_000)]
        for length in lengths {
            let frame = FrameDecoder.frame(rng.bytes(length))
            var (_, whole) = Self.relay()
            #expect(whole.receive(frame + rng.bytes(100)) == [.close(.unknownPeer)], "\(length) bytes")
            #expect(whole.isClosed)

            // Byte by byte: silence until the frame is complete, then the close, still no
            // write; a frame longer than the first handshake message closes at its length.
            var (_, slow) = Self.relay()
            var actions: [RelayConnectionState.Action] = []
            var fed = 0
            for byte in frame where !slow.isClosed {
                actions += slow.receive([byte])
                fed += 1
            }
            #expect(actions == [.close(.unknownPeer)], "\(length) bytes, one at a time")
            #expect(fed == (length > 1_248 ? 2 : frame.count), "\(length) bytes: closed after \(fed)")
        }
    }

    @Test("a first message with a small-order ephemeral key closes as an unknown peer")
    func smallOrderEphemeral() throws {
        var (_, relay) = Self.relay()
        #expect(relay.receive(FrameDecoder.frame([UInt8](repeating: 0, count: 1_248))) == [.close(.unknownPeer)])
    }

    @Test("a client that pins another relay key gets no answer", arguments: [Chunking.whole, .oneByte])
    func wrongPinnedKey(chunking: Chunking) throws {
        var link = Link(chunking: chunking, clientPins: AgreementPrivateKey().publicKey)
        link.handshake()
        #expect(link.relayLog == [.close(.unknownPeer)])
        #expect(link.clientLog.count == 1, "only the client's first message")
        #expect(!link.client.isEstablished)
    }

    @Test("a client of another version is answered VERSION, and names both versions")
    func otherVersion() throws {
        var link = Link(clientPreamble: Preamble(.client, version: 3))
        link.handshake()
        #expect(link.relayLog == [.write(RelayNotice.version(2).bytes), .close(.otherVersion(channel: 1, version: 3))])
        #expect(link.clientLog.last == .close(.otherVersion(relay: 2, client: 3)))
        #expect(link.clientCloses.last == "the relay speaks protocol version 2; this client speaks version 3")
    }

    @Test("a client offering the classical handshake (version 1, Noise_XK) is refused with VERSION 2, no downgrade")
    func classicalRefused() throws {
        var link = Link(clientPreamble: Preamble(.client, version: 1), clientProtocol: .classicalClientRelay)
        link.start()
        #expect(link.clientLog.first?.written?.count == 8 + 2 + 48, "the classical first message: e and a tag")
        link.handshake()
        #expect(link.relayLog == [.write(RelayNotice.version(2).bytes), .close(.otherVersion(channel: 1, version: 1))])
        #expect(link.clientCloses.last == "the relay speaks protocol version 2; this client speaks version 1")
        #expect(!link.client.isEstablished)
    }

    @Test("a valid first message then a bad third one fails the handshake")
    func badThirdMessage() throws {
        var rng = SplitMix64(seed: 21)
        for bad in [rng.bytes(64), rng.bytes(1), rng.bytes(500), nil] {
            var (key, relay) = Self.relay()
            var client = try RawClient(relayKey: key.publicKey)
            let first = try client.first()
            let reply = relay.receive(first)
            #expect(reply.count == 1 && reply[0].isWrite)
            // `nil`: the first message again, replayed as the third.
            let actions = relay.receive(bad.map(FrameDecoder.frame) ?? first)
            #expect(actions.count == 1)
            #expect(actions.first?.closeReason?.isHandshakeFailure == true, "\(actions)")
        }
    }

    @Test("a third message with one bit flipped fails the handshake")
    func tamperedThirdMessage() throws {
        var (key, relay) = Self.relay()
        var client = try RawClient(relayKey: key.publicKey)
        let reply = relay.receive(try client.first())
        var third = try client.third(reply: try #require(reply.first?.written))
        third[10] ^= 0x20
        let actions = relay.receive(third)
        #expect(actions.count == 1 && actions.first?.closeReason?.isHandshakeFailure == true)
    }

    @Test("a frame of length 0 is a protocol violation, in every state")
    func emptyFrame() throws {
        var (_, fresh) = Self.relay()
        let first = fresh.receive([0, 0])
        #expect(first.count == 1 && first.first?.closeReason?.isProtocolViolation == true)

        var (awaiting, _) = try Self.connected(admit: false)
        let early = awaiting.receive([0, 0])
        #expect(early.count == 1 && early.first?.closeReason?.isProtocolViolation == true)

        var (admitted, client) = try Self.connected()
        let actions = admitted.receive(try client.frame(plaintext: [0x00, 7]) + [0, 0])
        #expect(actions.count == 2)
        #expect(actions.first == .deliver([7]), "what came before the bad frame is still delivered")
        #expect(actions.last?.closeReason?.isProtocolViolation == true)
    }

    @Test("bytes after the close are ignored and not buffered")
    func bytesAfterClose() throws {
        var (key, relay) = Self.relay()
        #expect(relay.receive(FrameDecoder.frame([1, 2, 3])) == [.close(.unknownPeer)])
        var client = try RawClient(relayKey: key.publicKey)
        let held = relay.bufferedByteCount
        #expect(relay.receive(try client.first()) == [], "even a valid first message")
        #expect(relay.receive([UInt8](repeating: 0xAA, count: 70_000)) == [])
        #expect(relay.bufferedByteCount == held)
        #expect(relay.isClosed && !relay.isEstablished)
    }

    @Test("a transport frame that does not decrypt after admission is a protocol violation")
    func badTransportFrame() throws {
        var (relay, client) = try Self.connected()
        var good = try client.frame(plaintext: [0x00, 1])
        #expect(relay.receive(good) == [.deliver([1])])
        let replay = relay.receive(good)
        #expect(replay.count == 1 && replay.first?.closeReason?.isProtocolViolation == true, "a replay")

        (relay, client) = try Self.connected()
        good = try client.frame(plaintext: [0x00, 1])
        var tampered = good
        tampered[5] ^= 1
        let actions = relay.receive(tampered)
        #expect(actions.count == 1 && actions.first?.closeReason?.isProtocolViolation == true, "a flipped bit")
        #expect(relay.receive(good) == [], "closed for good")

        (relay, client) = try Self.connected()
        _ = try client.frame(plaintext: [0x00, 1])
        let skipped = relay.receive(try client.frame(plaintext: [0x00, 2]))
        #expect(skipped.count == 1 && skipped.first?.closeReason?.isProtocolViolation == true, "a dropped frame")
    }

    @Test("a bad transport frame before admission is a protocol violation too")
    func badTransportFrameBeforeAdmission() throws {
        var (relay, _) = try Self.connected(admit: false)
        var rng = SplitMix64(seed: 1)
        let actions = relay.receive(FrameDecoder.frame(rng.bytes(40)))
        #expect(actions.count == 1 && actions.first?.closeReason?.isProtocolViolation == true)
        #expect(relay.admit() == [])
    }

    @Test("decrypted fragments without a header, or with an unknown one, are protocol violations", arguments: [
        [], [0x02], [0xFF, 1, 2],
    ] as [[UInt8]])
    func badFragments(plaintext: [UInt8]) throws {
        var (relay, client) = try Self.connected()
        let actions = relay.receive(try client.frame(plaintext: plaintext))
        #expect(actions.count == 1 && actions.first?.closeReason?.isProtocolViolation == true, "\(actions)")
    }

    @Test("a message above maximumMessageLength closes the connection", arguments: [false, true])
    func tooLarge(admitted: Bool) throws {
        // One fragment over a small bound.
        var (relay, client) = try Self.connected(admit: admitted, maximumMessageLength: 1_000)
        #expect(relay.receive(try client.frame(plaintext: [0x00] + [UInt8](repeating: 1, count: 1_000))) == (admitted ? [.deliver([UInt8](repeating: 1, count: 1_000))] : []))
        let over = relay.receive(try client.frame(plaintext: [0x00] + [UInt8](repeating: 1, count: 1_001)))
        #expect(over.count == 1 && over.first?.closeReason?.isProtocolViolation == true)

        // Many fragments: closed on the fragment that crosses the bound, not after.
        (relay, client) = try Self.connected(admit: admitted, maximumMessageLength: 100_000)
        let fragments = MessageFragments.split([UInt8](repeating: 2, count: 200_000))
        #expect(relay.receive(try client.frame(plaintext: fragments[0])) == [])
        let crossing = relay.receive(try client.frame(plaintext: fragments[1]))
        #expect(crossing.count == 1 && crossing.first?.closeReason?.isProtocolViolation == true)
        #expect(relay.receive(try client.frame(plaintext: fragments[2])) == [])
    }

    @Test("a frame that is still arriving is held, bounded by one frame")
    func partialFrameBounded() throws {
        var (relay, client) = try Self.connected()
        let frame = try client.frame(plaintext: [0x00] + [UInt8](repeating: 3, count: 65_518))
        #expect(frame.count == 2 + 65_535)
        var early: [RelayConnectionState.Action] = []
        for byte in frame.dropLast() { early += relay.receive([byte]) }
        #expect(early.isEmpty)
        #expect(relay.bufferedByteCount == 65_536)
        #expect(relay.receive([frame.last!]) == [.deliver([UInt8](repeating: 3, count: 65_518))])
        #expect(relay.bufferedByteCount == 0)
    }
}
