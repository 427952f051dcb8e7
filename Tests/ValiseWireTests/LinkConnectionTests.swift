import Testing
import ValiseTestSupport
import ValiseCrypto
@testable import ValiseWire

@Suite("Relay links: initiator and responder state machines talking in memory")
struct LinkConnectionTests {
    static func text(_ string: String) -> [UInt8] { Array(string.utf8) }

    @Test("the handshake completes: preamble ‖ key ‖ frame 1, then frame 2, both sides established", arguments: Chunking.all)
    func handshake(chunking: Chunking) throws {
        var pair = LinkPair(chunking: chunking)
        pair.start()
        let first = try #require(pair.initiatorLog.first?.written)
        #expect(first.count == 8 + 32 + 2 + 1248, "the preamble, the initiator's static key, then frame 1")
        #expect(Array(first.prefix(8)) == Preamble.relayLink.bytes)
        #expect(Array(first[8..<40]) == pair.initiatorKey.publicKey.bytes)
        pair.pump()

        #expect(pair.responderWrites.map(\.count) == [2 + 1152], "frame 2 only")
        #expect(pair.responderLog.last == .established && pair.initiatorLog.last == .established)
        #expect(pair.initiator.isEstablished && pair.responder.isEstablished)
        #expect(pair.responder.peerKey == pair.initiatorKey.publicKey)
        #expect(pair.initiator.handshakeHash != nil && pair.initiator.handshakeHash == pair.responder.handshakeHash)
        #expect(pair.initiatorCloses.isEmpty && pair.responderCloses.isEmpty)
        #expect(pair.responder.bufferedByteCount == 0 && pair.initiator.bufferedByteCount == 0)
    }

    @Test("messages both ways, large ones chunked as on channel 1", arguments: [Chunking.whole, .random(seed: 4, maximum: 9_000)])
    func messages(chunking: Chunking) throws {
        var pair = LinkPair(chunking: chunking)
        pair.handshake()
        var rng = SplitMix64(seed: 17)
        let requests = [Self.text("hello"), [], rng.bytes(MessageFragments.maximumChunk + 1), rng.bytes(300_000)]
        let replies = [Self.text("welcome"), rng.bytes(200_000), [7]]
        for request in requests { pair.initiatorSends(request) }
        for reply in replies { pair.responderSends(reply) }
        pair.pump()
        #expect(pair.responderDelivered == requests)
        #expect(pair.initiatorDelivered == replies)
        #expect(pair.initiatorCloses.isEmpty && pair.responderCloses.isEmpty)
    }

    @Test("nothing is sent before the handshake is done")
    func sendBeforeEstablished() {
        var pair = LinkPair()
        #expect(pair.initiator.send([1]).isEmpty)
        #expect(pair.responder.send([1]).isEmpty)
        pair.start()
        #expect(pair.initiator.send([1]).isEmpty, "frame 2 has not arrived")
    }

    @Test("a message over the receiver's bound closes the link")
    func overBound() {
        let initiatorKey = AgreementPrivateKey()
        let responderKey = AgreementPrivateKey()
        var pair = LinkPair(
            initiator: LinkInitiatorState(localStatic: initiatorKey, remoteStatic: responderKey.publicKey, maximumMessageLength: 100),
            initiatorKey: initiatorKey, responderKey: responderKey)
        pair.handshake()
        pair.responderSends([UInt8](repeating: 1, count: 101))
        pair.pump()
        #expect(pair.initiatorDelivered.isEmpty)
        #expect(pair.initiatorCloses.count == 1)
        if case .protocolViolation? = pair.initiatorCloses.first {} else { Issue.record("\(pair.initiatorCloses)") }
    }

    @Test("the initiator pins another key: the responder drops frame 1 without a byte, and no stranger's frame 2 is accepted")
    func wrongResponderKey() throws {
        var pair = LinkPair(pinned: AgreementPrivateKey().publicKey)
        pair.handshake()
        #expect(pair.responderLog == [.close(.unknownPeer)], "frame 1 did not decrypt: nothing written")
        #expect(!pair.initiator.isEstablished && pair.initiatorLog.count == 1)

        // A genuine frame 2 from the real responder, made for another run, is refused too.
        var genuine = LinkPair(initiatorKey: pair.initiatorKey, responderKey: pair.responderKey)
        genuine.start()
        genuine.fromResponder(genuine.responder.receive(genuine.toResponder.take(genuine.toResponder.count)))
        let frame2 = genuine.toInitiator.take(genuine.toInitiator.count)
        var fresh = LinkInitiatorState(localStatic: pair.initiatorKey, remoteStatic: pair.responderKey.publicKey)
        _ = fresh.start()
        let actions = fresh.receive(frame2)
        #expect(actions.count == 1 && !fresh.isEstablished)
        if case .close(.handshakeFailed)? = actions.first {} else { Issue.record("\(actions)") }
    }

    @Test("an initiator the responder does not admit gets no byte, and the admission is asked once, with the announced key")
    func notAdmitted() {
        let asked = Box<[AgreementPublicKey]>([])
        var pair = LinkPair(chunking: .oneByte, admit: { key in asked.value.append(key); return false })
        pair.handshake()
        #expect(pair.responderLog == [.close(.notAdmitted)])
        #expect(asked.value == [pair.initiatorKey.publicKey])
        #expect(!pair.initiator.isEstablished && pair.initiatorCloses.isEmpty)
        #expect(pair.responder.receive([1, 2, 3]).isEmpty, "closed: nothing more")
    }

    @Test("a key substituted in flight (another admitted relay's) fails the handshake: frame 1 does not decrypt")
    func substitutedKey() throws {
        let other = AgreementPrivateKey()
        var pair = LinkPair(admit: { _ in true })
        pair.start()
        var bytes = pair.toResponder.take(pair.toResponder.count)
        bytes.replaceSubrange(8..<40, with: other.publicKey.bytes)
        let actions = pair.responder.receive(bytes)
        #expect(actions == [.close(.unknownPeer)], "nothing written")
    }

    @Test("frame 1 must be exactly 1248 bytes; longer is dropped at the length, silently", arguments: [1, 1247, 1249, 65_535])
    func wrongFirstFrameLength(length: Int) {
        var pair = LinkPair()
        let prefix = Preamble.relayLink.bytes + pair.initiatorKey.publicKey.bytes
        let frame = [UInt8(length >> 8), UInt8(length & 0xFF)] + [UInt8](repeating: 0x42, count: min(length, 1_300))
        let actions = pair.responder.receive(prefix + frame)
        #expect(actions == [.close(.unknownPeer)])
    }

    @Test("frame 2 must be exactly 1152 bytes", arguments: [1, 1151, 1153, 4_000])
    func wrongSecondFrameLength(length: Int) throws {
        var pair = LinkPair()
        pair.start()
        let frame = [UInt8(length >> 8), UInt8(length & 0xFF)] + [UInt8](repeating: 0x42, count: length)
        let actions = pair.initiator.receive(frame)
        #expect(actions.count == 1 && !pair.initiator.isEstablished)
        if case .close(.handshakeFailed)? = actions.first {} else { Issue.record("\(actions)") }
    }

    @Test("the initiator reads the peer's notices a byte at a time and reports them")
    func notices() {
        for (notice, reason) in [
            (RelayNotice.version(0).bytes, LinkCloseReason.otherVersion(peer: 0, local: 1)),
            (RelayNotice.version(2).bytes, .otherVersion(peer: 2, local: 1)), (RelayNotice.busy.bytes, .busy),
        ] {
            var pair = LinkPair()
            pair.start()
            var actions: [LinkAction] = []
            for byte in notice { actions += pair.initiator.receive([byte]) }
            #expect(actions == [.close(reason)])
        }
        var pair = LinkPair()
        pair.start()
        #expect(pair.initiator.receive(Preamble.magic + [0x58, 0]).count == 1, "an unknown notice closes")
        #expect(pair.initiator.isClosed)
    }

    @Test("the responder answers another channel-2 version with VERSION 1, another channel with VERSION 0, a stranger with nothing", arguments: [
        (UInt8(2), UInt8(2), UInt8(1)), (2, 0, 1), (1, 2, 0), (9, 1, 0),
    ])
    func responderVersion(channel: UInt8, version: UInt8, served: UInt8) {
        var responder = LinkResponderState(localStatic: AgreementPrivateKey(), admit: { _ in true })
        var actions: [LinkAction] = []
        for byte in Preamble(channel: channel, version: version).bytes { actions += responder.receive([byte]) }
        #expect(actions == [.write(RelayNotice.version(served).bytes), .close(.otherVersion(peer: version, local: served))])

        var stranger = LinkResponderState(localStatic: AgreementPrivateKey(), admit: { _ in true })
        #expect(stranger.receive(Array("GET / HTTP/1.1\r\n".utf8)) == [.close(.notValise)])
    }

    @Test("a relay's connection state hands a link's preamble, and the bytes after it, to the link responder", arguments: Chunking.all)
    func handOff(chunking: Chunking) throws {
        var pair = LinkPair(chunking: chunking)
        pair.start()
        let bytes = pair.toResponder.take(pair.toResponder.count)
        var relay = RelayConnectionState(relayKey: pair.responderKey, maximumMessageLength: 1 << 20)
        var chunker = Chunker(chunking)
        var remaining: [UInt8]?
        var offset = 0
        for piece in chunker.pieces(of: bytes) {
            offset += piece.count
            if remaining != nil {
                remaining! += piece
                continue
            }
            let actions = relay.receive(Array(piece))
            if let action = actions.first, case .relayLink(let rest) = action {
                #expect(actions.count == 1 && offset - rest.count == 8, "handed over right after the preamble")
                remaining = rest
            } else {
                #expect(actions.isEmpty)
            }
        }
        #expect(relay.receive([1, 2, 3]).isEmpty && !relay.isClosed, "the relay's state is done with this connection")
        let expected = pair.initiatorKey.publicKey
        var responder = LinkResponderState(localStatic: pair.responderKey, afterPreamble: true, admit: { $0 == expected })
        let actions = responder.receive(try #require(remaining))
        #expect(actions.count == 2 && actions.last == .established)
        pair.fromResponder(actions)
        pair.pump()
        #expect(pair.initiator.isEstablished)
    }
}

/// A mutable value shared with a `@Sendable` closure in a single-threaded test.
final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
