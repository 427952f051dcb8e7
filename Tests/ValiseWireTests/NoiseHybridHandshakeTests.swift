import Testing
import ValiseCrypto
@testable import ValiseWire

/// Fixed keys and a complete run of an `hfs` handshake, shared by the hybrid suites.
struct HybridRun {
    static let prologue = Array("valise/hfs-test".utf8)
    static func agreementKey(_ byte: UInt8) -> AgreementPrivateKey {
        try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: [UInt8](repeating: byte, count: 32)))
    }
    static func kemKey(_ byte: UInt8) -> MLKEM768PrivateKey {
        try! MLKEM768PrivateKey(seed: SecretBytes(copying: [UInt8](repeating: byte, count: 64)))
    }
    static let initiatorStatic = agreementKey(1)
    static let initiatorEphemeral = agreementKey(2)
    static let responderStatic = agreementKey(3)
    static let responderEphemeral = agreementKey(4)
    static let initiatorKEM = kemKey(5)

    let noise: NoiseProtocol
    var initiator: HandshakeState
    var responder: HandshakeState

    /// Both sides before the first message, with the X25519 ephemerals and the initiator's
    /// ML-KEM ephemeral fixed (the responder's encapsulation stays random: swift-crypto has
    /// no deterministic one).
    init(_ noise: NoiseProtocol) throws {
        self.noise = noise
        let knowsInitiator = noise.pattern.initiatorPreMessage.contains(.s)
        initiator = try HandshakeState(
            protocol: noise, role: .initiator, prologue: Self.prologue, staticKey: Self.initiatorStatic,
            remoteStaticKey: Self.responderStatic.publicKey, psks: [], fixedEphemeral: Self.initiatorEphemeral,
            fixedKEMEphemeral: Self.initiatorKEM)
        responder = try HandshakeState(
            protocol: noise, role: .responder, prologue: Self.prologue, staticKey: Self.responderStatic,
            remoteStaticKey: knowsInitiator ? Self.initiatorStatic.publicKey : nil, psks: [],
            fixedEphemeral: Self.responderEphemeral)
    }

    /// Writes and reads the next handshake message; returns it.
    mutating func step(payload: [UInt8] = []) throws -> [UInt8] {
        if initiator.isMyTurn {
            let message = try initiator.writeMessage(payload: payload)
            #expect(try responder.readMessage(message) == payload)
            return message
        }
        let message = try responder.writeMessage(payload: payload)
        #expect(try initiator.readMessage(message) == payload)
        return message
    }

    /// Every handshake message, with the given payloads (empty by default).
    mutating func complete(payloads: [[UInt8]] = []) throws -> [[UInt8]] {
        var messages: [[UInt8]] = []
        while !initiator.isComplete {
            messages.append(try step(payload: messages.count < payloads.count ? payloads[messages.count] : []))
        }
        return messages
    }

    /// The two hybrid protocols, by name (so parameterized tests show the name).
    static let protocols = [NoiseProtocol.hybridClientRelay.name, NoiseProtocol.hybridRelayLink.name]
}

@Suite("Noise: hybrid (hfs) handshakes with ML-KEM-768")
struct NoiseHybridHandshakeTests {
    @Test("XKhfs and KKhfs: both sides agree on the hash and the keys; transport both ways", arguments: HybridRun.protocols)
    func roundTrip(_ name: String) throws {
        var run = try HybridRun(NoiseProtocol(name))
        let payloads = [Array("one".utf8), Array("two".utf8), Array("three".utf8)]
        _ = try run.complete(payloads: payloads)
        #expect(run.initiator.isComplete && run.responder.isComplete)
        #expect(run.initiator.handshakeHash == run.responder.handshakeHash)
        #expect(run.responder.remoteStaticKey == HybridRun.initiatorStatic.publicKey)
        var a = try #require(run.initiator.split())
        var b = try #require(run.responder.split())
        #expect(try b.decrypt(a.encrypt(Array("to the responder".utf8))) == Array("to the responder".utf8))
        #expect(try a.decrypt(b.encrypt(Array("to the initiator".utf8))) == Array("to the initiator".utf8))
    }

    @Test("message sizes: e 32, e1 1184+16, ekem1 1088+16, s 32+16, payload tag 16")
    func sizes() throws {
        var xk = try HybridRun(.hybridClientRelay)
        #expect(try xk.complete().map(\.count) == [32 + 1200 + 16, 32 + 1104 + 16, 48 + 16])
        var kk = try HybridRun(.hybridRelayLink)
        #expect(try kk.complete().map(\.count) == [32 + 1200 + 16, 32 + 1104 + 16])
    }

    @Test("the KEM ephemeral is fresh in every handshake unless a test fixes it")
    func freshKEMKey() throws {
        func firstMessage() throws -> [UInt8] {
            var initiator = try HandshakeState(
                protocol: .hybridClientRelay, role: .initiator, prologue: HybridRun.prologue,
                staticKey: HybridRun.initiatorStatic, remoteStaticKey: HybridRun.responderStatic.publicKey, psks: [],
                fixedEphemeral: HybridRun.initiatorEphemeral)
            return try initiator.writeMessage(payload: [])
        }
        let first = try firstMessage(), second = try firstMessage()
        #expect(first.prefix(32) == second.prefix(32), "same X25519 ephemeral")
        #expect(first.dropFirst(32) != second.dropFirst(32), "but a new ML-KEM key pair")
        var fixed = try HybridRun(.hybridClientRelay), again = try HybridRun(.hybridClientRelay)
        #expect(try fixed.step() == again.step(), "a fixed KEM seed makes the first message exact")
    }

    @Test("a flipped bit in any byte of any handshake message fails the read, and the reader stops", arguments: HybridRun.protocols)
    func tamper(_ name: String) throws {
        var run = try HybridRun(NoiseProtocol(name))
        var failures = 0, attempts = 0
        while !run.initiator.isComplete {
            let writerIsInitiator = run.initiator.isMyTurn
            let reader = writerIsInitiator ? run.responder : run.initiator
            var writer = writerIsInitiator ? run.initiator : run.responder
            let message = try writer.writeMessage(payload: [7, 7, 7])
            for index in message.indices {
                for bit: UInt8 in [0x01, 0x80] {
                    var tampered = message
                    tampered[index] ^= bit
                    var copy = reader
                    attempts += 1
                    do {
                        _ = try copy.readMessage(tampered)
                    } catch {
                        failures += 1
                        #expect(throws: NoiseError.outOfOrder) { try copy.readMessage(message) }
                    }
                }
            }
            // The untouched message still goes through, on to the next one.
            var next = reader
            _ = try next.readMessage(message)
            if writerIsInitiator { (run.initiator, run.responder) = (writer, next) } else { (run.responder, run.initiator) = (writer, next) }
        }
        #expect(attempts > 2 * 2_000)
        #expect(failures == attempts)
    }

    @Test("a truncated or extended message is refused; a cut inside e, e1 or ekem1 as a bad length")
    func truncated() throws {
        var run = try HybridRun(.hybridClientRelay)
        let first = try run.initiator.writeMessage(payload: [])
        for length in [0, 31, 32, 32 + 1199] {
            var reader = run.responder
            #expect(throws: NoiseError.badLength) { try reader.readMessage(Array(first.prefix(length))) }
        }
        for bad in [Array(first.dropLast()), first + [0]] {
            var reader = run.responder
            #expect(throws: NoiseError.decryptFailed) { try reader.readMessage(bad) }
        }
        _ = try run.responder.readMessage(first)
        let second = try run.responder.writeMessage(payload: [])
        for length in [32 + 1103, 32 + 16] {
            var reader = run.initiator
            #expect(throws: NoiseError.badLength) { try reader.readMessage(Array(second.prefix(length))) }
        }
        _ = try run.initiator.readMessage(second)
    }

    @Test("an e1 that is not a valid ML-KEM-768 key is refused with invalid-kem, before any encapsulation")
    func invalidKEMKey() throws {
        // Message 1 of XKhfs written by hand (as the token processing says) around a public key
        // whose coefficients are out of range; it authenticates, so only the KEM check stops it.
        let noise = NoiseProtocol.hybridClientRelay
        var symmetric = SymmetricState(protocolName: noise.name)
        symmetric.mixHash(HybridRun.prologue)
        symmetric.mixHash(HybridRun.responderStatic.publicKey.bytes)
        let e = HybridRun.initiatorEphemeral
        symmetric.mixHash(e.publicKey.bytes)
        symmetric.mixKey(try e.sharedSecret(with: HybridRun.responderStatic.publicKey))
        var message = e.publicKey.bytes
        message += try symmetric.encryptAndHash([UInt8](repeating: 0xFF, count: 1184))
        message += try symmetric.encryptAndHash([])
        var run = try HybridRun(noise)
        #expect(throws: NoiseError.invalidKEMKey) { try run.responder.readMessage(message) }
    }

    @Test("names: hfs needs the KEM in the name and the KEM needs hfs; only XKhfs and KKhfs; no hfs with psk")
    func names() throws {
        #expect(NoiseProtocol.hybridClientRelay.name == "Noise_XKhfs_25519+MLKEM768_ChaChaPoly_BLAKE2b")
        #expect(NoiseProtocol.hybridRelayLink.name == "Noise_KKhfs_25519+MLKEM768_ChaChaPoly_BLAKE2b")
        for name in [
            "Noise_XKhfs_25519_ChaChaPoly_BLAKE2b", "Noise_XK_25519+MLKEM768_ChaChaPoly_BLAKE2b",
            "Noise_IKhfs_25519+MLKEM768_ChaChaPoly_BLAKE2b", "Noise_XKhfs+psk3_25519+MLKEM768_ChaChaPoly_BLAKE2b",
            "Noise_XKhfs_25519+MLKEM1024_ChaChaPoly_BLAKE2b", "Noise_KKhfshfs_25519+MLKEM768_ChaChaPoly_BLAKE2b",
        ] {
            #expect(throws: NoiseError.unsupported(name)) { try NoiseProtocol(name) }
        }
        #expect(NoiseProtocol.hybridRelayLink.pattern.messages == [[.e, .es, .ss, .e1], [.e, .ee, .se, .ekem1]])
        #expect(NoiseProtocol.hybridClientRelay.pattern.messages == [[.e, .es, .e1], [.e, .ee, .ekem1], [.s, .se]])
    }
}

