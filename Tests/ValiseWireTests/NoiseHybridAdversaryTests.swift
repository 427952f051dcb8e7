import Testing
import ValiseCrypto
@testable import ValiseWire

/// The recording adversary of issue 16: it has the whole transcript and every X25519
/// private key of both sides (static and ephemeral), and recomputes the handshake by the
/// token processing alone. Without the initiator's ML-KEM-768 secret it must not reach the
/// transport keys; with it (the positive control) it must.
@Suite("Noise: hybrid handshakes against a recording adversary")
struct NoiseHybridAdversaryTests {
    /// What the adversary derives: the handshake hash and the two transport directions.
    struct Derived {
        let handshakeHash: [UInt8]
        var initiatorToResponder: CipherState
        var responderToInitiator: CipherState
    }

    /// Walks the pattern token by token over the recorded messages. The hash needs no
    /// secret (it absorbs ciphertexts), the chaining key needs every DH (which the adversary
    /// can compute) and the KEM secret, for which it decapsulates with `kemKey`.
    /// Every X25519 private key of one handshake, and its prologue: what the adversary holds.
    struct Keys {
        var prologue = HybridRun.prologue
        var initiatorStatic = HybridRun.initiatorStatic
        var initiatorEphemeral = HybridRun.initiatorEphemeral
        var responderStatic = HybridRun.responderStatic
        var responderEphemeral = HybridRun.responderEphemeral
    }

    static func recompute(
        _ noise: NoiseProtocol, transcript: [[UInt8]], kemKey: MLKEM768PrivateKey, keys: Keys = Keys()
    ) throws -> Derived {
        var symmetric = SymmetricState(protocolName: noise.name)
        symmetric.mixHash(keys.prologue)
        if noise.pattern.initiatorPreMessage.contains(.s) { symmetric.mixHash(keys.initiatorStatic.publicKey.bytes) }
        if noise.pattern.responderPreMessage.contains(.s) { symmetric.mixHash(keys.responderStatic.publicKey.bytes) }
        func privateKey(initiator: Bool, ephemeral: Bool) -> AgreementPrivateKey {
            switch (initiator, ephemeral) {
            case (true, true): keys.initiatorEphemeral
            case (true, false): keys.initiatorStatic
            case (false, true): keys.responderEphemeral
            case (false, false): keys.responderStatic
            }
        }
        for (tokens, message) in zip(noise.pattern.messages, transcript) {
            var rest = message[...]
            func take(_ count: Int) -> [UInt8] {
                let field = Array(rest.prefix(count))
                rest = rest.dropFirst(count)
                return field
            }
            for token in tokens {
                let tag = symmetric.cipher.hasKey ? 16 : 0
                switch token {
                case .e:
                    let field = take(32)
                    symmetric.mixHash(field)
                case .s:
                    let field = take(32 + tag)
                    symmetric.mixHash(field)
                case .ee, .es, .se, .ss:
                    let first = privateKey(initiator: true, ephemeral: token == .ee || token == .es)
                    let second = privateKey(initiator: false, ephemeral: token == .ee || token == .se)
                    symmetric.mixKey(try first.sharedSecret(with: second.publicKey))
                case .e1:
                    // Encrypted under keys from the DHs only: the adversary can read it.
                    let field = take(1184 + tag)
                    _ = try symmetric.decryptAndHash(field)
                case .ekem1:
                    let field = take(1088 + tag)
                    let ciphertext = try symmetric.decryptAndHash(field)
                    symmetric.mixKey(try kemKey.decapsulate(ciphertext))
                case .psk: Issue.record("no psk in hfs patterns")
                }
            }
            symmetric.mixHash(Array(rest))
        }
        let (forward, backward) = symmetric.split()
        return Derived(handshakeHash: symmetric.handshakeHash, initiatorToResponder: forward, responderToInitiator: backward)
    }

    @Test("every X25519 key but not the ML-KEM secret: no transport key; with it: all of them", arguments: HybridRun.protocols)
    func recordingAdversary(_ name: String) throws {
        let noise = try NoiseProtocol(name)
        var run = try HybridRun(noise)
        let transcript = try run.complete(payloads: [Array("hello".utf8), Array("welcome".utf8), Array("me".utf8)])
        var initiator = try #require(run.initiator.split())
        var responder = try #require(run.responder.split())
        let toResponder = try initiator.encrypt(Array("cable 1 to the relay".utf8))
        let toInitiator = try responder.encrypt(Array("cable 2 to the mission".utf8))

        // Without the KEM secret: the best the adversary can do is decapsulate with a key of
        // its own (ML-KEM's implicit rejection gives it a pseudorandom secret).
        var guessed = try Self.recompute(noise, transcript: transcript, kemKey: HybridRun.kemKey(6))
        #expect(guessed.handshakeHash == run.initiator.handshakeHash, "the hash is public: the walk is right")
        #expect(throws: NoiseError.decryptFailed) { try guessed.initiatorToResponder.decrypt(associatedData: [], ciphertext: toResponder) }
        #expect(throws: NoiseError.decryptFailed) { try guessed.responderToInitiator.decrypt(associatedData: [], ciphertext: toInitiator) }

        // Positive control: the same walk with the initiator's ML-KEM secret reads both ways.
        var control = try Self.recompute(noise, transcript: transcript, kemKey: HybridRun.initiatorKEM)
        #expect(control.handshakeHash == run.initiator.handshakeHash)
        #expect(try control.initiatorToResponder.decrypt(associatedData: [], ciphertext: toResponder) == Array("cable 1 to the relay".utf8))
        #expect(try control.responderToInitiator.decrypt(associatedData: [], ciphertext: toInitiator) == Array("cable 2 to the mission".utf8))
    }

    /// The same adversary on the independent Python implementation's transcripts, made with
    /// Valise's real prologues (Fixtures/noise-hfs-transcripts.json): it holds all four
    /// X25519 private keys the fixture lists, and the ML-KEM seed only for the control.
    @Test("the Python transcripts: every X25519 key is not enough; with the ML-KEM seed, the transport keys", arguments: HybridTranscript.all())
    func recordedTranscript(_ recorded: HybridTranscript) throws {
        let noise = try NoiseProtocol(recorded.protocolName)
        let keys = Keys(
            prologue: recorded.prologue, initiatorStatic: HybridTranscript.key(recorded.initiatorStatic),
            initiatorEphemeral: HybridTranscript.key(recorded.initiatorEphemeral),
            responderStatic: HybridTranscript.key(recorded.responderStatic),
            responderEphemeral: HybridTranscript.key(recorded.responderEphemeral))
        var guessed = try Self.recompute(noise, transcript: recorded.messages, kemKey: MLKEM768PrivateKey(), keys: keys)
        #expect(guessed.handshakeHash == recorded.handshakeHash, "the hash is public: the walk is right")
        #expect(throws: NoiseError.decryptFailed) { try guessed.initiatorToResponder.decrypt(associatedData: [], ciphertext: recorded.toResponder.ciphertext) }
        #expect(throws: NoiseError.decryptFailed) { try guessed.responderToInitiator.decrypt(associatedData: [], ciphertext: recorded.toInitiator.ciphertext) }

        let kemKey = try MLKEM768PrivateKey(seed: SecretBytes(copying: recorded.initiatorKEMSeed))
        var control = try Self.recompute(noise, transcript: recorded.messages, kemKey: kemKey, keys: keys)
        #expect(try control.initiatorToResponder.decrypt(associatedData: [], ciphertext: recorded.toResponder.ciphertext) == recorded.toResponder.plaintext)
        #expect(try control.responderToInitiator.decrypt(associatedData: [], ciphertext: recorded.toInitiator.ciphertext) == recorded.toInitiator.plaintext)
    }

    @Test("a second handshake with the same X25519 keys but another ML-KEM key pair gets other transport keys")
    func otherKEMKeyPair() throws {
        var first = try HybridRun(.hybridClientRelay)
        _ = try first.complete()
        var second = try HybridRun(.hybridClientRelay)
        second.initiator = try HandshakeState(
            protocol: .hybridClientRelay, role: .initiator, prologue: HybridRun.prologue, staticKey: HybridRun.initiatorStatic,
            remoteStaticKey: HybridRun.responderStatic.publicKey, psks: [], fixedEphemeral: HybridRun.initiatorEphemeral,
            fixedKEMEphemeral: HybridRun.kemKey(6))
        _ = try second.complete()
        var a = try #require(first.initiator.split())
        var b = try #require(second.responder.split())
        #expect(throws: NoiseError.decryptFailed) { try b.decrypt(a.encrypt(Array("same DH keys".utf8))) }
    }
}
