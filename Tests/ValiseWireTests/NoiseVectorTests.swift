import Foundation
import Testing
import ValiseCrypto
@testable import ValiseWire

/// One official Noise test vector (Fixtures/SOURCE.md: cacophony, snow, noise-c).
struct NoiseVector: Sendable, CustomTestStringConvertible {
    let file: String
    let protocolName: String
    let initPrologue: [UInt8]
    let respPrologue: [UInt8]
    let initStatic: [UInt8]?
    let respStatic: [UInt8]?
    let initEphemeral: [UInt8]
    let respEphemeral: [UInt8]
    let initRemoteStatic: [UInt8]?
    let respRemoteStatic: [UInt8]?
    let initPSKs: [[UInt8]]
    let respPSKs: [[UInt8]]
    let handshakeHash: [UInt8]?
    let messages: [(payload: [UInt8], ciphertext: [UInt8])]

    var testDescription: String { "\(protocolName) (\(file.split(separator: "_").first ?? ""))" }

    static func all() -> [NoiseVector] {
        let names = [
            "cacophony_XK", "snow_XK", "noise-c_XK", "cacophony_XX", "snow_XX", "noise-c_XX", "cacophony_KK",
        ]
        return names.flatMap { load("\($0)_25519_ChaChaPoly_BLAKE2b") }
    }

    static func load(_ file: String) -> [NoiseVector] {
        guard let url = Bundle.module.url(forResource: file, withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let vectors = object["vectors"] as? [[String: Any]] else { fatalError("cannot load \(file)") }
        func hex(_ value: Any?) -> [UInt8]? { (value as? String).flatMap(Hex.decode) }
        return vectors.map { v in
            NoiseVector(
                file: file,
                protocolName: (v["protocol_name"] ?? v["name"]) as! String,
                initPrologue: hex(v["init_prologue"]) ?? [], respPrologue: hex(v["resp_prologue"]) ?? [],
                initStatic: hex(v["init_static"]), respStatic: hex(v["resp_static"]),
                initEphemeral: hex(v["init_ephemeral"])!, respEphemeral: hex(v["resp_ephemeral"])!,
                initRemoteStatic: hex(v["init_remote_static"]), respRemoteStatic: hex(v["resp_remote_static"]),
                initPSKs: (v["init_psks"] as? [String] ?? []).map { Hex.decode($0)! },
                respPSKs: (v["resp_psks"] as? [String] ?? []).map { Hex.decode($0)! },
                handshakeHash: hex(v["handshake_hash"]),
                messages: (v["messages"] as! [[String: String]]).map { (Hex.decode($0["payload"]!)!, Hex.decode($0["ciphertext"]!)!) }
            )
        }
    }
}

@Suite("Noise: official vectors")
struct NoiseVectorTests {
    static func key(_ bytes: [UInt8]?) -> AgreementPrivateKey? {
        bytes.map { try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: $0)) }
    }

    @Test("every handshake message, transport message and the handshake hash match", arguments: NoiseVector.all())
    func replay(_ vector: NoiseVector) throws {
        let noise = try NoiseProtocol(vector.protocolName)
        var initiator = try HandshakeState(
            protocol: noise, role: .initiator, prologue: vector.initPrologue, staticKey: Self.key(vector.initStatic),
            remoteStaticKey: vector.initRemoteStatic.map { try! AgreementPublicKey(bytes: $0) },
            psks: vector.initPSKs.map { SecretBytes(copying: $0) }, fixedEphemeral: Self.key(vector.initEphemeral))
        var responder = try HandshakeState(
            protocol: noise, role: .responder, prologue: vector.respPrologue, staticKey: Self.key(vector.respStatic),
            remoteStaticKey: vector.respRemoteStatic.map { try! AgreementPublicKey(bytes: $0) },
            psks: vector.respPSKs.map { SecretBytes(copying: $0) }, fixedEphemeral: Self.key(vector.respEphemeral))

        let handshakeLength = noise.pattern.messages.count
        var initiatorTransport: NoiseTransport?
        var responderTransport: NoiseTransport?
        for (index, message) in vector.messages.enumerated() {
            let initiatorSends = index % 2 == 0
            if index < handshakeLength {
                let written = initiatorSends
                    ? try initiator.writeMessage(payload: message.payload)
                    : try responder.writeMessage(payload: message.payload)
                #expect(written == message.ciphertext, "handshake message \(index)")
                let read = initiatorSends ? try responder.readMessage(written) : try initiator.readMessage(written)
                #expect(read == message.payload)
                if index == handshakeLength - 1 {
                    #expect(initiator.isComplete && responder.isComplete)
                    if let expected = vector.handshakeHash {
                        #expect(initiator.handshakeHash == expected)
                        #expect(responder.handshakeHash == expected)
                    }
                    initiatorTransport = initiator.split()
                    responderTransport = responder.split()
                }
            } else {
                let written = initiatorSends
                    ? try initiatorTransport!.encrypt(message.payload)
                    : try responderTransport!.encrypt(message.payload)
                #expect(written == message.ciphertext, "transport message \(index)")
                let read = initiatorSends ? try responderTransport!.decrypt(written) : try initiatorTransport!.decrypt(written)
                #expect(read == message.payload)
            }
        }
        #expect(vector.messages.count > handshakeLength, "the vector has transport messages")
    }

    @Test("the fixtures hold every XK and XX vector of the three sources, and cacophony's KK ones")
    func coverage() {
        let names = Set(NoiseVector.all().map(\.protocolName))
        #expect(names.contains("Noise_XK_25519_ChaChaPoly_BLAKE2b"))
        #expect(names.contains("Noise_XX_25519_ChaChaPoly_BLAKE2b"))
        #expect(names.contains("Noise_KK_25519_ChaChaPoly_BLAKE2b"))
        // cacophony XK, XKpsk3; snow XK, XKpsk0+psk3; noise-c XK; cacophony XX, XXpsk3; snow XX and 4 psk variants;
        // noise-c XX; cacophony KK, KKpsk0, KKpsk2 (the relay links' pattern).
        #expect(NoiseVector.all().count == 2 + 2 + 1 + 2 + 5 + 1 + 3)
    }
}
