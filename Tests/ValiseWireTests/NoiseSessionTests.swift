import Testing
import ValiseTestSupport
import ValiseCrypto
@testable import ValiseWire

@Suite("Transport: NoiseSession")
struct NoiseSessionTests {
    static let interval = NoiseSession.rekeyInterval

    /// Two sessions over one completed XK handshake: the client's and the relay's.
    static func sessions(maximumMessageLength: Int = 1 << 20) throws -> (client: NoiseSession, relay: NoiseSession) {
        let handshake = try CompletedHandshake()
        return (
            NoiseSession(transport: handshake.client, maximumMessageLength: maximumMessageLength),
            NoiseSession(transport: handshake.relay, maximumMessageLength: maximumMessageLength)
        )
    }

    /// Opens every frame of `bytes`; checks that only the last frame completes a message.
    static func open(_ bytes: [UInt8], with session: inout NoiseSession) throws -> [UInt8]? {
        let frames = try unframe(bytes)
        for frame in frames.dropLast() {
            #expect(try session.open(frame) == nil, "only the last fragment completes the message")
        }
        return try session.open(try #require(frames.last))
    }

    @Test("seal and open round trip, both ways", arguments: [0, 1, 100, 65_517, 65_518, 65_519, 65_520, 200_000])
    func roundTrip(length: Int) throws {
        var (client, relay) = try Self.sessions()
        #expect(client.handshakeHash == relay.handshakeHash)
        var rng = SplitMix64(seed: UInt64(length))
        let message = rng.bytes(length)
        let sealed = try client.seal(message)
        let frames = try unframe(sealed)
        #expect(frames.count == MessageFragments.split(message).count)
        #expect(frames.allSatisfy { $0.count <= FrameDecoder.maximumFrameLength })
        #expect(try Self.open(sealed, with: &relay) == message)
        #expect(try Self.open(relay.seal(message), with: &client) == message)
    }

    @Test("many messages in a row, of mixed sizes, arrive in order")
    func sequence() throws {
        var (client, relay) = try Self.sessions()
        var rng = SplitMix64(seed: 99)
        for _ in 0..<50 {
            let message = rng.bytes(rng.int(in: 0...(rng.int(in: 0...9) == 0 ? 140_000 : 300)))
            #expect(try Self.open(client.seal(message), with: &relay) == message)
            #expect(try Self.open(relay.seal(message), with: &client) == message)
        }
    }

    @Test("a frame opened out of order fails, and a failure does not advance the session")
    func reordered() throws {
        var (client, relay) = try Self.sessions()
        let one = try unframe(client.seal([1]))[0]
        let two = try unframe(client.seal([2]))[0]
        #expect(throws: SessionError.noise(.decryptFailed)) { try relay.open(two) }
        #expect(try relay.open(one) == [1])
        #expect(try relay.open(two) == [2])
    }

    @Test("a replayed frame fails")
    func replayed() throws {
        var (client, relay) = try Self.sessions()
        let one = try unframe(client.seal([1]))[0]
        #expect(try relay.open(one) == [1])
        #expect(throws: SessionError.noise(.decryptFailed)) { try relay.open(one) }
        // Replaying the whole stream to a fresh session of another handshake fails too.
        var (_, stranger) = try Self.sessions()
        #expect(throws: SessionError.noise(.decryptFailed)) { try stranger.open(one) }
    }

    @Test("fragments of one message reordered, dropped or repeated fail")
    func fragmentsReordered() throws {
        var rng = SplitMix64(seed: 1)
        let message = rng.bytes(200_000)
        do {
            var (client, relay) = try Self.sessions()
            let frames = try unframe(client.seal(message))
            #expect(try relay.open(frames[0]) == nil)
            #expect(throws: SessionError.noise(.decryptFailed)) { try relay.open(frames[2]) }
        }
        do {
            var (client, relay) = try Self.sessions()
            let frames = try unframe(client.seal(message))
            #expect(try relay.open(frames[0]) == nil)
            #expect(throws: SessionError.noise(.decryptFailed)) { try relay.open(frames[0]) }
            #expect(try relay.open(frames[1]) == nil)
        }
    }

    @Test("a flipped bit anywhere in a frame fails; the untouched frame still opens")
    func flippedBit() throws {
        var (client, relay) = try Self.sessions()
        let frame = try unframe(client.seal(Array("the diplomatic bag".utf8)))[0]
        for index in [0, 1, frame.count / 2, frame.count - 17, frame.count - 16, frame.count - 1] {
            for bit in [0, 7] {
                var tampered = frame
                tampered[index] ^= 1 << bit
                #expect(throws: SessionError.noise(.decryptFailed), "byte \(index) bit \(bit)") { try relay.open(tampered) }
            }
        }
        #expect(throws: SessionError.noise(.decryptFailed)) { try relay.open(Array(frame.dropLast())) }
        #expect(throws: SessionError.noise(.decryptFailed)) { try relay.open(frame + [0]) }
        #expect(throws: SessionError.noise(.decryptFailed)) { try relay.open(Array(frame.prefix(15))) }
        #expect(try relay.open(frame) == Array("the diplomatic bag".utf8))
    }

    @Test("a frame reflected back to its sender fails: each direction has its own key")
    func reflected() throws {
        var (client, relay) = try Self.sessions()
        let frame = try unframe(client.seal([1, 2, 3]))[0]
        #expect(throws: SessionError.noise(.decryptFailed)) { try client.open(frame) }
        #expect(try relay.open(frame) == [1, 2, 3])
    }

    @Test("a message past the receiver's bound fails as a framing error")
    func tooLarge() throws {
        var (client, relay) = try Self.sessions(maximumMessageLength: 1_000)
        #expect(try Self.open(client.seal([UInt8](repeating: 1, count: 1_000)), with: &relay)?.count == 1_000)
        let frame = try unframe(client.seal([UInt8](repeating: 1, count: 1_001)))[0]
        #expect(throws: SessionError.framing(.messageTooLarge(limit: 1_000))) { try relay.open(frame) }
    }

    // MARK: Rekeying

    /// Sessions whose client→relay direction starts at `nonce` on both sides. `probe` is a
    /// copy of the relay's transport, which rekeys only when told to.
    static func sessionsNear(nonce: UInt64) throws -> (client: NoiseSession, relay: NoiseSession, probe: NoiseTransport) {
        var handshake = try CompletedHandshake()
        handshake.client.send.setNonce(nonce)
        handshake.relay.receive.setNonce(nonce)
        return (
            NoiseSession(transport: handshake.client, maximumMessageLength: 1 << 20),
            NoiseSession(transport: handshake.relay, maximumMessageLength: 1 << 20),
            handshake.relay
        )
    }

    @Test("both sides rekey after exactly rekeyInterval transport messages", arguments: [1 as UInt64, 2, 5])
    func rekeyAtInterval(multiple: UInt64) throws {
        let boundary = Self.interval * multiple
        var (client, relay, probe) = try Self.sessionsNear(nonce: boundary - 2)
        let messages: [[UInt8]] = [[1], [2], [3], [4]]
        let frames = try messages.map { try unframe(client.seal($0))[0] }
        for (frame, message) in zip(frames, messages) {
            #expect(try relay.open(frame) == message)
        }

        // Without a rekey, the frames before the boundary open and the ones after do not.
        #expect(try probe.decrypt(frames[0]) == [0x00, 1])
        #expect(try probe.decrypt(frames[1]) == [0x00, 2])
        #expect(probe.receive.nonce == boundary)
        #expect(throws: NoiseError.decryptFailed) { try probe.decrypt(frames[2]) }
        // With one rekey at the boundary (and the nonce carried on), they do.
        probe.receive.rekey()
        #expect(try probe.decrypt(frames[2]) == [0x00, 3])
        #expect(try probe.decrypt(frames[3]) == [0x00, 4])
    }

    @Test("a rekey in the middle of a fragmented message is seamless")
    func rekeyInsideMessage() throws {
        var (client, relay, _) = try Self.sessionsNear(nonce: Self.interval - 1)
        var rng = SplitMix64(seed: 2)
        let message = rng.bytes(200_000)
        #expect(try Self.open(client.seal(message), with: &relay) == message)
        #expect(try Self.open(client.seal([9]), with: &relay) == [9])
    }

    @Test("the other direction is independent of a rekey")
    func rekeyOneDirection() throws {
        var (client, relay, _) = try Self.sessionsNear(nonce: Self.interval - 1)
        #expect(try Self.open(client.seal([1]), with: &relay) == [1])
        #expect(try Self.open(relay.seal([2]), with: &client) == [2])
        #expect(try Self.open(client.seal([3]), with: &relay) == [3])
    }

    @Test("CipherState.rekey: both rekeyed sides agree, the nonce is kept, the key changes")
    func cipherStateRekey() throws {
        let handshake = try CompletedHandshake()
        var send = handshake.client.send
        var receive = handshake.relay.receive
        send.setNonce(41)
        receive.setNonce(41)
        let before = try send.encrypt(associatedData: [], plaintext: [1])
        #expect(try receive.decrypt(associatedData: [], ciphertext: before) == [1])
        send.rekey()
        receive.rekey()
        #expect(send.nonce == 42 && receive.nonce == 42)
        var stale = handshake.relay.receive
        stale.setNonce(42)
        let after = try send.encrypt(associatedData: [], plaintext: [2])
        #expect(throws: NoiseError.decryptFailed) { try stale.decrypt(associatedData: [], ciphertext: after) }
        #expect(try receive.decrypt(associatedData: [], ciphertext: after) == [2])
    }
}
