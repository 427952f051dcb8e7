import Foundation
import Testing
import ValiseCrypto
@testable import ValiseSession

/// Known answers computed by an independent implementation: scripts/interop/session.py,
/// written from docs/PROTOCOL.md ("End-to-end") alone: PQXDH by hand on PyNaCl, HKDF from
/// `cryptography` and kyber-py's ML-KEM-1024, the Double Ratchet on the PyPI package
/// doubleratchet (Fixtures/SOURCE.md). swift-crypto encapsulates only with its own
/// randomness, so Valise replays PQXDH on the responder's side (decapsulation is
/// deterministic); the ratchet is replayed on both sides from the vector's SK.
struct SessionVector: Sendable, CustomTestStringConvertible {
    let fields: [String: any Sendable]
    var testDescription: String {
        (fields["bobOneTimePrekey"] is String ? "with a one-time prekey" : "without a one-time prekey")
            + (fields["kemPrekeyKind"] as? String == "lastResort" ? ", last-resort KEM prekey" : ", one-time KEM prekey")
    }

    func hex(_ key: String) -> [UInt8] {
        guard let text = fields[key] as? String, let bytes = Hex.decode(text) else { fatalError("no hex field \(key)") }
        return bytes
    }
    func optionalHex(_ key: String) -> [UInt8]? { (fields[key] as? String).flatMap { Hex.decode($0) } }
    func hexList(_ key: String) -> [[UInt8]] { (fields[key] as? [String] ?? []).map { Hex.decode($0)! } }
    var messages: [(from: String, plaintext: [UInt8], message: [UInt8])] {
        (fields["messages"] as? [[String: String]] ?? []).map { ($0["from"]!, Hex.decode($0["plaintext"]!)!, Hex.decode($0["message"]!)!) }
    }
    var deliveryOrder: [Int] { fields["deliveryOrder"] as? [Int] ?? [] }

    static let all: [SessionVector] = {
        guard let url = Bundle.module.url(forResource: "session-vectors", withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = object["vectors"] as? [[String: Any]] else { fatalError("cannot load session-vectors.json") }
        return list.map { entry in SessionVector(fields: entry.mapValues { value -> any Sendable in
            switch value {
            case let text as String: return text
            case let numbers as [Int]: return numbers
            case let texts as [String]: return texts
            case let objects as [[String: String]]: return objects
            default: return "\(value)"
            }
        }) }
    }()
}

private func privateKey(_ bytes: [UInt8]) throws -> AgreementPrivateKey {
    try AgreementPrivateKey(rawRepresentation: SecretBytes(copying: bytes))
}

@Suite("End-to-end sessions against an independent implementation")
struct SessionVectorTests {
    struct Keys {
        let alice: SigningKey
        let bob: SigningKey
        let signedPrekey: AgreementPrivateKey
        let oneTime: AgreementPrivateKey?
        let kem: MLKEM1024PrivateKey
        let kemKind: PQXDH.KEMPrekeyKind

        init(_ vector: SessionVector) throws {
            alice = try SigningKey(seed: SecretBytes(copying: vector.hex("aliceSeed")))
            bob = try SigningKey(seed: SecretBytes(copying: vector.hex("bobSeed")))
            signedPrekey = try privateKey(vector.hex("bobSignedPrekey"))
            oneTime = try vector.optionalHex("bobOneTimePrekey").map(privateKey)
            kem = try MLKEM1024PrivateKey(seed: SecretBytes(copying: vector.hex("bobKEMPrekeySeed")))
            kemKind = vector.fields["kemPrekeyKind"] as? String == "lastResort" ? .lastResort : .oneTime
        }
    }

    @Test("PQXDH: the same keys give the same public keys and signatures; the responder gets the same KEM secret, SK, AD and header", arguments: SessionVector.all)
    func pqxdh(vector: SessionVector) throws {
        let keys = try Keys(vector)
        #expect(keys.alice.publicKey.bytes == vector.hex("aliceIdentityKey"))
        #expect(keys.bob.publicKey.bytes == vector.hex("bobIdentityKey"))
        #expect(keys.signedPrekey.publicKey.bytes == vector.hex("bobSignedPrekeyPublic"))
        #expect(keys.oneTime?.publicKey.bytes == vector.optionalHex("bobOneTimePrekeyPublic"))
        #expect(keys.kem.publicKey.bytes == vector.hex("bobKEMPrekeyPublic"))
        #expect(PQXDH.kemPrekeyID(keys.kem.publicKey) == vector.hex("kemPrekeyID"))
        // Ed25519 is deterministic: Valise signs the same bytes to the same signatures.
        #expect(PQXDH.signPrekey(keys.signedPrekey.publicKey, with: keys.bob).bytes == vector.hex("signedPrekeySignature"))
        let kemPrekey = PQXDH.KEMPrekey(key: keys.kem.publicKey, kind: keys.kemKind, signedBy: keys.bob)
        #expect(kemPrekey.signature.bytes == vector.hex("kemPrekeySignature"))
        #expect(kemPrekey.isValid(for: keys.bob.publicKey))

        let header = try PQXDH.InitialHeader(decoding: vector.hex("initialHeader"))
        #expect(header.encoded == vector.hex("initialHeader"))
        #expect(header.kemCiphertext == vector.hex("kemCiphertext"))
        #expect(Hex.encode(try keys.kem.decapsulate(header.kemCiphertext).withUnsafeBytes { Array($0) }) == Hex.encode(vector.hex("kemSharedSecret")))
        let responded = try PQXDH.respond(
            identity: keys.bob, signedPrekey: keys.signedPrekey, oneTimePrekey: keys.oneTime, kemPrekey: keys.kem, header: header)
        #expect(Hex.encode(responded.sharedSecret.withUnsafeBytes { Array($0) }) == Hex.encode(vector.hex("sharedSecret")))
        #expect(responded.associatedData == vector.hex("associatedData"))
    }

    @Test("Session: the first session message (version 2, kind 1, header, ratchet message) is accepted and read", arguments: SessionVector.all)
    func firstMessage(vector: SessionVector) throws {
        let keys = try Keys(vector)
        var bobKeys = try vector.hexList("bobRatchetKeys").map(privateKey)
        let prekeys = Session.Prekeys(
            signedPrekey: { $0 == keys.signedPrekey.publicKey ? keys.signedPrekey : nil },
            oneTimePrekey: { $0 == keys.oneTime?.publicKey ? keys.oneTime : nil },
            kemPrekey: { $0 == PQXDH.kemPrekeyID(keys.kem.publicKey) ? (keys.kem, keys.kemKind) : nil },
            seenBefore: { _ in false })
        let message = vector.hex("firstSessionMessage")
        #expect(Session.isInitial(message))
        let accepted = try Session.accept(message, identity: keys.bob, prekeys: prekeys, newRatchetKey: { bobKeys.removeFirst() })
        #expect(accepted.plaintext == vector.messages[0].plaintext)
        #expect(accepted.usedOneTimeKEMPrekey == (keys.kemKind == .oneTime ? vector.hex("kemPrekeyID") : nil))
        #expect(accepted.needsReplayRecord == (keys.oneTime == nil && keys.kemKind == .lastResort))
    }

    @Test("Double Ratchet: every message of the conversation is byte for byte what Valise sends, and Valise reads each in the delivery order", arguments: SessionVector.all)
    func ratchet(vector: SessionVector) throws {
        let keys = try Keys(vector)
        let header = try PQXDH.InitialHeader(decoding: vector.hex("initialHeader"))
        // Alice's agreement cannot be recomputed (her encapsulation would draw its own
        // randomness): her ratchet starts from the vector's SK and AD.
        let aliceAgreement = PQXDH.Agreement(sharedSecret: SecretBytes(copying: vector.hex("sharedSecret")), associatedData: vector.hex("associatedData"))
        let bobAgreement = try PQXDH.respond(
            identity: keys.bob, signedPrekey: keys.signedPrekey, oneTimePrekey: keys.oneTime, kemPrekey: keys.kem, header: header)

        var aliceKeys = try vector.hexList("aliceRatchetKeys").map(privateKey)
        var bobKeys = try vector.hexList("bobRatchetKeys").map(privateKey)
        var aliceSession = try DoubleRatchet(initiatorWith: aliceAgreement, remoteRatchetKey: keys.signedPrekey.publicKey, ratchetKey: aliceKeys.removeFirst())
        var bobSession = DoubleRatchet(responderWith: bobAgreement, signedPrekey: keys.signedPrekey)
        // Replay the conversation: sends happen in order, each delivery as soon as the
        // vector's delivery order allows (a message is delivered after it was sent).
        let messages = vector.messages
        var sent = 0
        for index in vector.deliveryOrder {
            while sent <= index {
                let expected = messages[sent]
                let made = expected.from == "alice" ? try aliceSession.encrypt(expected.plaintext) : try bobSession.encrypt(expected.plaintext)
                #expect(Hex.encode(made.encoded) == Hex.encode(expected.message), "message \(sent) from \(expected.from)")
                sent += 1
            }
            let delivered = messages[index]
            let ratchetMessage = try RatchetMessage(decoding: delivered.message)
            let plaintext = delivered.from == "alice"
                ? try bobSession.decrypt(ratchetMessage, newRatchetKey: { bobKeys.removeFirst() })
                : try aliceSession.decrypt(ratchetMessage, newRatchetKey: { aliceKeys.removeFirst() })
            #expect(plaintext == delivered.plaintext, "message \(index)")
        }
        #expect(sent == messages.count && aliceKeys.isEmpty && bobKeys.isEmpty)
    }
}
