import Testing
import ValiseTestSupport
import ValiseCrypto
@testable import ValiseWire

@Suite("Relay links: the KKhfs transcript through the state machines, and tampering")
struct LinkTranscriptTests {
    /// The Python implementation's Noise_KKhfs transcript (Fixtures/noise-hfs-transcripts.json).
    static let transcript = HybridTranscript.all().first { $0.protocolName == NoiseProtocol.hybridRelayLink.name }!

    /// The transcript's initiator inside a LinkInitiatorState.
    static func initiator() throws -> LinkInitiatorState {
        let key = HybridTranscript.key(transcript.initiatorStatic)
        return LinkInitiatorState(handshake: try transcript.initiator(), localKey: key.publicKey, maximumMessageLength: 1 << 20)
    }

    @Test("the initiator writes the transcript's bytes, reads its frame 2, and its transport messages match")
    func replayInitiator() throws {
        let transcript = Self.transcript
        var initiator = try Self.initiator()
        let announced = HybridTranscript.key(transcript.initiatorStatic).publicKey.bytes
        #expect(initiator.start() == [.write(Preamble.relayLink.bytes + announced + FrameDecoder.frame(transcript.messages[0]))])
        #expect(initiator.receive(FrameDecoder.frame(transcript.messages[1])) == [.established])
        #expect(initiator.handshakeHash == transcript.handshakeHash)
        // The transcript's transport plaintexts begin with the fragment flag 0x00 (last chunk).
        #expect(transcript.toResponder.plaintext.first == MessageFragments.lastChunk)
        #expect(initiator.send(Array(transcript.toResponder.plaintext.dropFirst())) == [.write(FrameDecoder.frame(transcript.toResponder.ciphertext))])
        #expect(initiator.receive(FrameDecoder.frame(transcript.toInitiator.ciphertext)) == [.deliver(Array(transcript.toInitiator.plaintext.dropFirst()))])
    }

    @Test("the responder, with the transcript's static key, accepts its frame 1 and completes with the transcript's initiator")
    func replayResponder() throws {
        let transcript = Self.transcript
        let initiatorKey = HybridTranscript.key(transcript.initiatorStatic)
        let expected = initiatorKey.publicKey
        var pair = LinkPair(
            initiator: try Self.initiator(), initiatorKey: initiatorKey, responderKey: HybridTranscript.key(transcript.responderStatic),
            admit: { $0 == expected })
        pair.handshake()
        #expect(pair.initiator.isEstablished && pair.responder.isEstablished)
        #expect(pair.responder.handshakeHash == pair.initiator.handshakeHash)
        pair.initiatorSends(Array("cable 1".utf8))
        pair.pump()
        #expect(pair.responderDelivered == [Array("cable 1".utf8)])
    }

    /// Offsets to change in the initiator's first write (preamble, key, frame 1) and the
    /// responder's (frame 2): every byte of the preamble, key and lengths, then a stride
    /// through the frames' ephemeral keys, KEM parts and tags.
    static let initiatorOffsets = Array(0..<42) + Array(stride(from: 42, to: 42 + 1248, by: 61)) + [42 + 1247]
    static let responderOffsets = Array(0..<2) + Array(stride(from: 2, to: 2 + 1152, by: 53)) + [2 + 1151]

    @Test("a byte changed in the initiator's handshake bytes fails the link", arguments: initiatorOffsets)
    func tamperInitiator(offset: Int) {
        expectFails(tamper: (toResponder: true, offset: offset, mask: 0x01))
    }

    @Test("a byte changed in frame 2 fails the link", arguments: responderOffsets)
    func tamperResponder(offset: Int) {
        expectFails(tamper: (toResponder: false, offset: offset, mask: 0x80))
    }

    /// The frame is 2 + 20 bytes (flag, 3 bytes, tag); a longer length in its first byte
    /// would only leave the receiver waiting for bytes that never come (its frame timer ends it).
    @Test("a byte changed in a transport message, in either direction, closes the receiver", arguments: [1, 2, 10, 18, 21])
    func tamperTransport(offset: Int) {
        for toResponder in [true, false] {
            var pair = LinkPair()
            pair.handshake()
            let base = toResponder ? pair.sentToResponder : pair.sentToInitiator
            pair.tamper = (toResponder: toResponder, offset: base + offset, mask: 0x04)
            if toResponder {
                pair.initiatorSends([9, 9, 9])
            } else {
                pair.responderSends([9, 9, 9])
            }
            pair.pump()
            #expect(pair.initiatorDelivered.isEmpty && pair.responderDelivered.isEmpty)
            let closes = toResponder ? pair.responderCloses : pair.initiatorCloses
            #expect(closes.count == 1, "offset \(offset), to the responder: \(toResponder)")
        }
    }

    /// Runs a link with one byte changed in flight: no message gets through, and the side
    /// that read the changed byte is not established with its peer.
    func expectFails(tamper: (toResponder: Bool, offset: Int, mask: UInt8)) {
        var pair = LinkPair()
        pair.tamper = tamper
        pair.handshake()
        pair.initiatorSends(Array("request".utf8))
        pair.responderSends(Array("reply".utf8))
        pair.pump()
        #expect(pair.responderDelivered.isEmpty && pair.initiatorDelivered.isEmpty, "offset \(tamper.offset)")
        #expect(!(pair.initiator.isEstablished && pair.responder.isEstablished), "offset \(tamper.offset)")
        if tamper.toResponder {
            #expect(!pair.responder.isEstablished)
        } else {
            #expect(pair.initiatorCloses.count == 1)
        }
    }
}
