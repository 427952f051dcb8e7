import Testing
import ValiseCrypto
@testable import ValiseWire

@Suite("Noise: handshake and transport rules")
struct NoiseHandshakeTests {
    let relay = AgreementPrivateKey()
    let client = AgreementPrivateKey()
    let prologue = Array("valise/1".utf8)

    func pair(clientKnows relayKey: AgreementPublicKey? = nil, responderPrologue: [UInt8]? = nil) throws -> (HandshakeState, HandshakeState) {
        let initiator = try HandshakeState(
            protocol: .classicalClientRelay, role: .initiator, prologue: prologue, staticKey: client,
            remoteStaticKey: relayKey ?? relay.publicKey)
        let responder = try HandshakeState(
            protocol: .classicalClientRelay, role: .responder, prologue: responderPrologue ?? prologue, staticKey: relay, remoteStaticKey: nil)
        return (initiator, responder)
    }

    /// Runs the three XK messages with empty payloads.
    func complete(_ initiator: inout HandshakeState, _ responder: inout HandshakeState) throws {
        _ = try responder.readMessage(initiator.writeMessage(payload: []))
        _ = try initiator.readMessage(responder.writeMessage(payload: []))
        _ = try responder.readMessage(initiator.writeMessage(payload: []))
    }

    @Test("XK: the responder learns the client's static key; both derive the same keys")
    func roundTrip() throws {
        var (initiator, responder) = try pair()
        let first = try initiator.writeMessage(payload: [])
        #expect(first.count == 32 + 16, "e and an empty encrypted payload")
        #expect(responder.remoteStaticKey == nil)
        _ = try responder.readMessage(first)
        _ = try initiator.readMessage(responder.writeMessage(payload: []))
        let third = try initiator.writeMessage(payload: [])
        #expect(third.count == 48 + 16, "the client's static key travels encrypted")
        _ = try responder.readMessage(third)
        #expect(responder.remoteStaticKey == client.publicKey)
        #expect(initiator.handshakeHash == responder.handshakeHash)

        var a = try #require(initiator.split())
        var b = try #require(responder.split())
        let sealed = try a.encrypt(Array("hello relay".utf8))
        #expect(try b.decrypt(sealed) == Array("hello relay".utf8))
        #expect(try a.decrypt(b.encrypt([1, 2, 3])) == [1, 2, 3])
    }

    @Test("a client with the wrong relay key fails at the first message: the relay cannot read it")
    func wrongRelayKey() throws {
        var (initiator, responder) = try pair(clientKnows: AgreementPrivateKey().publicKey)
        #expect(throws: NoiseError.decryptFailed) { try responder.readMessage(initiator.writeMessage(payload: [])) }
        // And the responder is finished: nothing more is accepted.
        #expect(throws: NoiseError.outOfOrder) { try responder.writeMessage(payload: []) }
    }

    @Test("a different prologue fails the handshake")
    func wrongPrologue() throws {
        var (initiator, responder) = try pair(responderPrologue: Array("valise/2".utf8))
        #expect(throws: NoiseError.decryptFailed) { try responder.readMessage(initiator.writeMessage(payload: [])) }
    }

    @Test("truncated, extended, tampered and out-of-order handshake messages are refused")
    func malformedHandshake() throws {
        var (initiator, _) = try pair()
        let first = try initiator.writeMessage(payload: [])
        for bad in [[], Array(first.prefix(31)), Array(first.prefix(40)), first + [0], [UInt8](repeating: 0, count: 48)] {
            var (_, responder) = try pair()
            #expect(throws: NoiseError.self) { try responder.readMessage(bad) }
        }
        for index in [0, 31, 32, 47] {
            var (_, responder) = try pair()
            var tampered = first
            tampered[index] ^= 1
            #expect(throws: NoiseError.self) { try responder.readMessage(tampered) }
        }
        var (fresh, responder) = try pair()
        #expect(throws: NoiseError.outOfOrder) { try responder.writeMessage(payload: []) }
        #expect(throws: NoiseError.outOfOrder) { try fresh.readMessage(first) }
        #expect(throws: NoiseError.tooLarge) { try responder.readMessage([UInt8](repeating: 0, count: 65_536)) }
    }

    @Test("small-order ephemeral keys are refused")
    func smallOrderEphemeral() throws {
        var (_, responder) = try pair()
        #expect(throws: NoiseError.weakKey) { try responder.readMessage([UInt8](repeating: 0, count: 48)) }
    }

    @Test("transport: replayed, reordered or tampered messages fail; a failure does not advance the nonce")
    func transportRules() throws {
        var (initiator, responder) = try pair()
        try complete(&initiator, &responder)
        var a = try #require(initiator.split())
        var b = try #require(responder.split())
        let one = try a.encrypt([1])
        let two = try a.encrypt([2])
        #expect(throws: NoiseError.decryptFailed) { try b.decrypt(two) }
        var tampered = one
        tampered[0] ^= 1
        #expect(throws: NoiseError.decryptFailed) { try b.decrypt(tampered) }
        #expect(try b.decrypt(one) == [1])
        #expect(throws: NoiseError.decryptFailed) { try b.decrypt(one) }
        #expect(try b.decrypt(two) == [2])
    }

    @Test("nonces stop before 2^64 - 1")
    func nonceExhaustion() throws {
        var (initiator, responder) = try pair()
        try complete(&initiator, &responder)
        var a = try #require(initiator.split())
        var b = try #require(responder.split())
        a.send.setNonce(.max - 1)
        b.receive.setNonce(.max - 1)
        #expect(try b.decrypt(a.encrypt([9])) == [9])
        #expect(a.send.nonce == .max)
        #expect(throws: NoiseError.nonceExhausted) { try a.encrypt([9]) }
        #expect(throws: NoiseError.nonceExhausted) { try b.decrypt([UInt8](repeating: 0, count: 17)) }
    }

    @Test("rekey: both sides rekey and keep talking; one side alone cannot")
    func rekey() throws {
        var (initiator, responder) = try pair()
        try complete(&initiator, &responder)
        var a = try #require(initiator.split())
        var b = try #require(responder.split())
        #expect(try b.decrypt(a.encrypt([1])) == [1])
        a.send.rekey()
        b.receive.rekey()
        #expect(try b.decrypt(a.encrypt([2])) == [2])
        a.send.rekey()
        #expect(throws: NoiseError.decryptFailed) { try b.decrypt(a.encrypt([3])) }
    }

    @Test("protocol names are parsed strictly")
    func names() throws {
        #expect(try NoiseProtocol("Noise_XKpsk0+psk3_25519_ChaChaPoly_BLAKE2b").pattern.hasPSK)
        for bad in ["Noise_XK_448_ChaChaPoly_BLAKE2b", "Noise_KN_25519_ChaChaPoly_BLAKE2b", "Noise_XKpsk9_25519_ChaChaPoly_BLAKE2b",
                    "Noise_XKpsk_25519_ChaChaPoly_BLAKE2b", "XK"] {
            #expect(throws: NoiseError.self) { try NoiseProtocol(bad) }
        }
        #expect(throws: NoiseError.self) {
            try HandshakeState(protocol: .classicalClientRelay, role: .initiator, prologue: [], staticKey: client, remoteStaticKey: nil)
        }
    }
}
