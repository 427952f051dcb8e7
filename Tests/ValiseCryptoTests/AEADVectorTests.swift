import Testing
@testable import ValiseCrypto

/// RFC 8439 and draft-irtf-cfrg-xchacha vectors (Fixtures/SOURCES.md), plus a tampered-tag,
/// wrong-key and truncated case for every decrypt.
@Suite("AEAD")
struct AEADVectorTests {
    @Test("ChaCha20-Poly1305 (RFC 8439)", arguments: Fixture.vectors("chacha20poly1305_rfc8439"))
    func chaChaPolyVector(_ vector: Vector) throws {
        let key = try SymmetricKey(SecretBytes(copying: vector.hex("key")))
        let nonce = try ChaChaPoly.Nonce(bytes: vector.hex("nonce"))
        let expected = vector.hex("ciphertext") + vector.hex("tag")

        let sealed = ChaChaPoly.seal(vector.hex("plaintext"), using: key, nonce: nonce, authenticating: vector.hex("aad"))
        #expect(sealed == expected)
        let opened = try ChaChaPoly.open(expected, using: key, nonce: nonce, authenticating: vector.hex("aad"))
        #expect(opened == vector.hex("plaintext"))
    }

    @Test("XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03)", arguments: Fixture.vectors("xchacha20poly1305_draft"))
    func xChaChaPolyVector(_ vector: Vector) throws {
        let key = try SymmetricKey(SecretBytes(copying: vector.hex("key")))
        let nonce = try XChaChaPoly.Nonce(bytes: vector.hex("nonce"))
        let expected = vector.hex("ciphertext") + vector.hex("tag")

        #expect(XChaChaPoly.seal(vector.hex("plaintext"), using: key, nonce: nonce, authenticating: vector.hex("aad")) == expected)
        #expect(XChaChaPoly.seal(SecretBytes(copying: vector.hex("plaintext")), using: key, nonce: nonce, authenticating: vector.hex("aad")) == expected)
        #expect(try XChaChaPoly.open(expected, using: key, nonce: nonce, authenticating: vector.hex("aad")) == vector.hex("plaintext"))
        let secret = try XChaChaPoly.openSecret(expected, using: key, nonce: nonce, authenticating: vector.hex("aad"))
        #expect(secret.withUnsafeBytes { Array($0) } == vector.hex("plaintext"))
    }

    /// Every way a sealed message can be wrong must fail, for both AEADs and both open paths.
    @Test("tampered, wrong-key, truncated and wrong-AD ciphertexts are refused", arguments: ["chacha", "xchacha", "xchacha-secret"])
    func refusesAlteredCiphertexts(_ variant: String) throws {
        let key = SymmetricKey()
        let otherKey = SymmetricKey()
        let plaintext = Array("a message for the ambassador".utf8)
        let ad = Array("header".utf8)

        let (sealed, open): ([UInt8], ([UInt8], SymmetricKey, [UInt8]) throws -> [UInt8])
        switch variant {
        case "chacha":
            let nonce = try ChaChaPoly.Nonce(bytes: Random.bytes(count: 12))
            sealed = ChaChaPoly.seal(plaintext, using: key, nonce: nonce, authenticating: ad)
            open = { try ChaChaPoly.open($0, using: $1, nonce: nonce, authenticating: $2) }
        case "xchacha":
            let nonce = XChaChaPoly.Nonce.random()
            sealed = XChaChaPoly.seal(plaintext, using: key, nonce: nonce, authenticating: ad)
            open = { try XChaChaPoly.open($0, using: $1, nonce: nonce, authenticating: $2) }
        default:
            let nonce = XChaChaPoly.Nonce.random()
            sealed = XChaChaPoly.seal(plaintext, using: key, nonce: nonce, authenticating: ad)
            open = { try XChaChaPoly.openSecret($0, using: $1, nonce: nonce, authenticating: $2).withUnsafeBytes { Array($0) } }
        }

        #expect(try open(sealed, key, ad) == plaintext)
        // A flipped bit anywhere: in the ciphertext or in the tag.
        for index in [0, plaintext.count / 2, sealed.count - 16, sealed.count - 1] {
            #expect(throws: CryptoError.authenticationFailed) { try open(flipped(sealed, at: index), key, ad) }
        }
        #expect(throws: CryptoError.authenticationFailed) { try open(sealed, otherKey, ad) }
        #expect(throws: CryptoError.authenticationFailed) { try open(sealed, key, Array("other".utf8)) }
        for length in [0, 1, 15, 16, sealed.count - 1] {
            #expect(throws: CryptoError.authenticationFailed) { try open(Array(sealed.prefix(length)), key, ad) }
        }
    }

    @Test("empty plaintext and empty associated data work")
    func emptyInputs() throws {
        let key = SymmetricKey()
        let nonce = XChaChaPoly.Nonce.random()
        let sealed = XChaChaPoly.seal([], using: key, nonce: nonce)
        #expect(sealed.count == 16)
        #expect(try XChaChaPoly.open(sealed, using: key, nonce: nonce).isEmpty)
        #expect(try XChaChaPoly.openSecret(sealed, using: key, nonce: nonce).count == 0)
    }

    @Test("nonces and keys of the wrong length are refused")
    func wrongLengths() {
        #expect(throws: CryptoError.self) { try ChaChaPoly.Nonce(bytes: [UInt8](repeating: 0, count: 24)) }
        #expect(throws: CryptoError.self) { try XChaChaPoly.Nonce(bytes: [UInt8](repeating: 0, count: 12)) }
        #expect(throws: CryptoError.self) { try SymmetricKey(SecretBytes(zeroes: 16)) }
    }
}
