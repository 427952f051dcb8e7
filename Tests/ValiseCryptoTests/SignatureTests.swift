import Testing
@testable import ValiseCrypto

@Suite("Signatures with purposes, and key conversion")
struct SignatureTests {
    let key = SigningKey()
    let message = Array("enroll bob@nairobi".utf8)

    @Test("a signature verifies only for its own purpose, key and message")
    func domainSeparation() throws {
        let entry = SignaturePurpose("directory-entry")
        let checkpoint = SignaturePurpose("checkpoint")
        let signature = key.signature(for: message, purpose: entry)

        #expect(key.publicKey.isValidSignature(signature, for: message, purpose: entry))
        #expect(!key.publicKey.isValidSignature(signature, for: message, purpose: checkpoint))
        #expect(!key.publicKey.isValidSignature(signature, for: message + [0], purpose: entry))
        #expect(!SigningKey().publicKey.isValidSignature(signature, for: message, purpose: entry))
        #expect(throws: CryptoError.invalidSignature) {
            try key.publicKey.verify(signature, for: message, purpose: checkpoint)
        }
        // The purpose is really part of what was signed: a plain signature over the bare
        // message does not verify.
        #expect(!key.publicKey.verifyRaw(signature, for: message))
        #expect(key.publicKey.verifyRaw(signature, for: Array("valise/v1/directory-entry".utf8) + [0] + message))
    }

    @Test("purpose and message boundaries cannot be shifted")
    func noAmbiguity() {
        // Without the terminating zero byte, ("a", "bc") and ("ab", "c") would sign the same bytes.
        let signature = key.signature(for: Array("bc".utf8), purpose: SignaturePurpose("a"))
        #expect(!key.publicKey.isValidSignature(signature, for: Array("c".utf8), purpose: SignaturePurpose("ab")))
    }

    @Test("purpose labels are restricted")
    func labels() {
        #expect(SignaturePurpose.isValid("directory-entry"))
        #expect(SignaturePurpose.isValid("relay/status.v2"))
        #expect(!SignaturePurpose.isValid(""))
        #expect(!SignaturePurpose.isValid("Upper"))
        #expect(!SignaturePurpose.isValid("nul\u{0}byte"))
        #expect(!SignaturePurpose.isValid(String(repeating: "a", count: 65)))
    }

    @Test("a seed round-trips to the same key")
    func seedRoundTrip() throws {
        let again = try SigningKey(seed: key.seed)
        #expect(again.publicKey == key.publicKey)
        #expect(throws: CryptoError.self) { try SigningKey(seed: SecretBytes.random(count: 31)) }
    }

    @Test("Ed25519 to X25519: both halves convert to a matching key pair")
    func conversion() throws {
        let x25519Private = try key.agreementPrivateKey()
        let x25519Public = try key.publicKey.agreementPublicKey()
        #expect(x25519Private.publicKey == x25519Public)

        // Two identities agree on one secret through their converted keys (as X3DH does).
        let other = SigningKey()
        let ab = try x25519Private.sharedSecret(with: other.publicKey.agreementPublicKey())
        let ba = try other.agreementPrivateKey().sharedSecret(with: x25519Public)
        #expect(ab.constantTimeEquals(ba))
    }

    @Test("small-order and malformed Ed25519 keys are refused")
    func invalidPublicKeys() {
        // The identity point (y = 1) has small order; 0xff… is not a canonical encoding.
        let identity = [1] + [UInt8](repeating: 0, count: 31)
        let nonCanonical = [UInt8](repeating: 0xff, count: 32)
        for bytes in [identity, nonCanonical, [UInt8](repeating: 0, count: 32)] {
            #expect(throws: CryptoError.self) { try SigningPublicKey(bytes: bytes) }
        }
        #expect(throws: CryptoError.self) { try SigningPublicKey(bytes: [UInt8](repeating: 1, count: 31)) }
        #expect(throws: CryptoError.self) { try Signature(bytes: [UInt8](repeating: 1, count: 63)) }
    }

    @Test("descriptions never show private keys")
    func redaction() {
        #expect(!key.description.contains(Hex.encode(key.seed.withUnsafeBytes { Array($0) })))
        #expect(key.description.contains("redacted"))
        let agreement = AgreementPrivateKey()
        #expect(!"\(agreement)".contains(Hex.encode(agreement.rawRepresentation.withUnsafeBytes { Array($0) })))
        #expect("\(SymmetricKey())" == "SymmetricKey(redacted)")
    }
}
