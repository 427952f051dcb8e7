import Foundation
import Testing
import ValiseCrypto
@testable import ValiseWire

/// A hybrid handshake transcript made from fixed seeds by the independent Python
/// implementation (Fixtures/noise-hfs-transcripts.json; Fixtures/SOURCE.md says how). No
/// published vectors exist for the hfs patterns, and swift-crypto cannot encapsulate
/// deterministically, so the side replayed here is the initiator's: its `e` and `e1` come
/// from the fixed seeds, it reads the Python responder's message 2, and it must write the
/// same messages 1 and 3 and reach the same hash and transport keys.
struct HybridTranscript: Sendable, CustomTestStringConvertible {
    let protocolName: String
    let prologue: [UInt8]
    let initiatorStatic: [UInt8]
    let initiatorEphemeral: [UInt8]
    let initiatorKEMSeed: [UInt8]
    let responderStatic: [UInt8]
    let responderEphemeral: [UInt8]
    let messages: [[UInt8]]
    let handshakeHash: [UInt8]
    let toResponder: (plaintext: [UInt8], ciphertext: [UInt8])
    let toInitiator: (plaintext: [UInt8], ciphertext: [UInt8])

    var testDescription: String { protocolName }

    static let file = "noise-hfs-transcripts"

    static func all() -> [HybridTranscript] {
        guard let url = Bundle.module.url(forResource: file, withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let handshakes = object["handshakes"] as? [[String: Any]] else { fatalError("cannot load \(file)") }
        return handshakes.map { h in
            func hex(_ key: String) -> [UInt8] { Hex.decode(h[key] as! String)! }
            return HybridTranscript(
                protocolName: h["protocol"] as! String, prologue: hex("prologue"),
                initiatorStatic: hex("initiatorStatic"), initiatorEphemeral: hex("initiatorEphemeral"),
                initiatorKEMSeed: hex("initiatorKEMSeed"), responderStatic: hex("responderStatic"),
                responderEphemeral: hex("responderEphemeral"),
                messages: (h["messages"] as! [String]).map { Hex.decode($0)! }, handshakeHash: hex("handshakeHash"),
                toResponder: (hex("initiatorToResponderPlaintext"), hex("initiatorToResponderCiphertext")),
                toInitiator: (hex("responderToInitiatorPlaintext"), hex("responderToInitiatorCiphertext")))
        }
    }

    static func key(_ bytes: [UInt8]) -> AgreementPrivateKey {
        try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: bytes))
    }

    /// The initiator with the transcript's keys; `kemSeed` overrides its ML-KEM seed.
    func initiator(kemSeed: [UInt8]? = nil) throws -> HandshakeState {
        let noise = try NoiseProtocol(protocolName)
        let kem = try MLKEM768PrivateKey(seed: SecretBytes(copying: kemSeed ?? initiatorKEMSeed))
        return try HandshakeState(
            protocol: noise, role: .initiator, prologue: prologue, staticKey: Self.key(initiatorStatic),
            remoteStaticKey: Self.key(responderStatic).publicKey, psks: [], fixedEphemeral: Self.key(initiatorEphemeral),
            fixedKEMEphemeral: kem)
    }
}

@Suite("Noise: hybrid transcripts from the independent Python implementation")
struct NoiseHybridTranscriptTests {
    @Test("the fixture covers both handshakes with Valise's prologues and frame sizes")
    func coverage() {
        let transcripts = HybridTranscript.all()
        #expect(transcripts.map(\.protocolName) == [NoiseProtocol.hybridClientRelay.name, NoiseProtocol.hybridRelayLink.name])
        #expect(transcripts.map(\.prologue) == [ValiseTransport.prologue, ValiseTransport.relayLinkPrologue])
        #expect(transcripts.map { $0.messages.map(\.count) } == [[1248, 1152, 64], [1248, 1152]])
    }

    @Test("the initiator replays the transcript byte for byte", arguments: HybridTranscript.all())
    func replay(_ transcript: HybridTranscript) throws {
        var initiator = try transcript.initiator()
        #expect(try initiator.writeMessage(payload: []) == transcript.messages[0], "message 1")
        #expect(try initiator.readMessage(transcript.messages[1]) == [])
        if transcript.messages.count == 3 {
            #expect(try initiator.writeMessage(payload: []) == transcript.messages[2], "message 3")
        }
        #expect(initiator.isComplete)
        #expect(initiator.handshakeHash == transcript.handshakeHash)
        var transport = try #require(initiator.split())
        #expect(try transport.encrypt(transcript.toResponder.plaintext) == transcript.toResponder.ciphertext)
        #expect(try transport.decrypt(transcript.toInitiator.ciphertext) == transcript.toInitiator.plaintext)
    }

    @Test("message 2 altered (its ephemeral key, its ML-KEM ciphertext, its tag) fails the initiator", arguments: HybridTranscript.all())
    func tamperedReply(_ transcript: HybridTranscript) throws {
        for offset in [0, 32, 32 + 700, 32 + 1103, transcript.messages[1].count - 1] {
            var initiator = try transcript.initiator()
            _ = try initiator.writeMessage(payload: [])
            var reply = transcript.messages[1]
            reply[offset] ^= 0x01
            #expect(throws: NoiseError.self, "byte \(offset)") { try initiator.readMessage(reply) }
            #expect(initiator.split() == nil)
        }
    }

    @Test("message 2 truncated or extended fails the initiator", arguments: HybridTranscript.all())
    func truncatedReply(_ transcript: HybridTranscript) throws {
        let reply = transcript.messages[1]
        for bad in [Array(reply.prefix(32)), Array(reply.prefix(32 + 1103)), Array(reply.dropLast()), reply + [0]] {
            var initiator = try transcript.initiator()
            _ = try initiator.writeMessage(payload: [])
            #expect(throws: NoiseError.self, "\(bad.count) bytes") { try initiator.readMessage(bad) }
        }
    }

    @Test("an initiator with another ML-KEM key cannot read the reply (wrong key)", arguments: HybridTranscript.all())
    func wrongKEMKey(_ transcript: HybridTranscript) throws {
        var initiator = try transcript.initiator(kemSeed: [UInt8](repeating: 7, count: 64))
        let first = try initiator.writeMessage(payload: [])
        #expect(first.prefix(32) == transcript.messages[0].prefix(32), "the same X25519 ephemeral key")
        #expect(first != transcript.messages[0])
        #expect(throws: NoiseError.decryptFailed) { try initiator.readMessage(transcript.messages[1]) }
    }
}
