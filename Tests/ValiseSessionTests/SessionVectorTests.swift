import Foundation
import Testing
import ValiseCrypto
@testable import ValiseSession

/// Known answers computed by an independent implementation: scripts/interop/session.py,
/// written from docs/PROTOCOL.md ("End-to-end") alone on the PyPI packages x3dh and
/// doubleratchet and on PyNaCl (Fixtures/SOURCE.md). Valise must produce every byte of
/// them from the same keys, and read every message they made.
struct SessionVector: Sendable, CustomTestStringConvertible {
    let fields: [String: any Sendable]
    var testDescription: String { fields["bobOneTimePrekey"] is String ? "with a one-time prekey" : "without a one-time prekey" }

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
    @Test("X3DH: the same keys give the same secret, associated data and initial header; the signed prekey's signature verifies", arguments: SessionVector.all)
    func x3dh(vector: SessionVector) throws {
        let alice = try SigningKey(seed: SecretBytes(copying: vector.hex("aliceSeed")))
        let bob = try SigningKey(seed: SecretBytes(copying: vector.hex("bobSeed")))
        #expect(alice.publicKey.bytes == vector.hex("aliceIdentityKey"))
        #expect(bob.publicKey.bytes == vector.hex("bobIdentityKey"))
        let signedPrekey = try privateKey(vector.hex("bobSignedPrekey"))
        #expect(signedPrekey.publicKey.bytes == vector.hex("bobSignedPrekeyPublic"))
        let oneTime = try vector.optionalHex("bobOneTimePrekey").map(privateKey)
        let bundle = X3DH.PrekeyBundle(
            identityKey: bob.publicKey, signedPrekey: signedPrekey.publicKey,
            signedPrekeySignature: try Signature(bytes: vector.hex("signedPrekeySignature")), oneTimePrekey: oneTime?.publicKey)
        let (agreement, header) = try X3DH.initiate(identity: alice, bundle: bundle, ephemeral: privateKey(vector.hex("aliceEphemeral")))
        #expect(Hex.encode(agreement.sharedSecret.withUnsafeBytes { Array($0) }) == Hex.encode(vector.hex("sharedSecret")))
        #expect(agreement.associatedData == vector.hex("associatedData"))
        #expect(header.encoded == vector.hex("initialHeader"))
        let responded = try X3DH.respond(identity: bob, signedPrekey: signedPrekey, oneTimePrekey: oneTime, header: try X3DH.InitialHeader(decoding: vector.hex("initialHeader")))
        #expect(responded.sharedSecret.constantTimeEquals(agreement.sharedSecret))
    }

    @Test("Double Ratchet: every message of the conversation is byte for byte what Valise sends, and Valise reads each in the delivery order", arguments: SessionVector.all)
    func ratchet(vector: SessionVector) throws {
        let alice = try SigningKey(seed: SecretBytes(copying: vector.hex("aliceSeed")))
        let bob = try SigningKey(seed: SecretBytes(copying: vector.hex("bobSeed")))
        let signedPrekey = try privateKey(vector.hex("bobSignedPrekey"))
        let oneTime = try vector.optionalHex("bobOneTimePrekey").map(privateKey)
        let header = try X3DH.InitialHeader(decoding: vector.hex("initialHeader"))
        let bundle = X3DH.PrekeyBundle(
            identityKey: bob.publicKey, signedPrekey: signedPrekey.publicKey,
            signedPrekeySignature: try Signature(bytes: vector.hex("signedPrekeySignature")), oneTimePrekey: oneTime?.publicKey)
        let (aliceAgreement, _) = try X3DH.initiate(identity: alice, bundle: bundle, ephemeral: privateKey(vector.hex("aliceEphemeral")))
        let bobAgreement = try X3DH.respond(identity: bob, signedPrekey: signedPrekey, oneTimePrekey: oneTime, header: header)

        var aliceKeys = try vector.hexList("aliceRatchetKeys").map(privateKey)
        var bobKeys = try vector.hexList("bobRatchetKeys").map(privateKey)
        var aliceSession = try DoubleRatchet(initiatorWith: aliceAgreement, remoteRatchetKey: signedPrekey.publicKey, ratchetKey: aliceKeys.removeFirst())
        var bobSession = DoubleRatchet(responderWith: bobAgreement, signedPrekey: signedPrekey)

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
