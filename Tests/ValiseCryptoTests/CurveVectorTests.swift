import Testing
@testable import ValiseCrypto

/// RFC 7748 (X25519) and RFC 8032 (Ed25519) vectors; Fixtures/SOURCES.md names the sources.
@Suite("X25519 and Ed25519")
struct CurveVectorTests {
    @Test("X25519 scalar multiplication (RFC 7748 5.2)", arguments: Fixture.vectors("x25519_rfc7748", kind: "scalar_mult"))
    func scalarMultiplication(_ vector: Vector) throws {
        let key = try AgreementPrivateKey(rawRepresentation: SecretBytes(copying: vector.hex("scalar")))
        let shared = try key.sharedSecret(with: AgreementPublicKey(bytes: vector.hex("u")))
        #expect(shared.withUnsafeBytes { Array($0) } == vector.hex("output"))
    }

    @Test("X25519 iterated (RFC 7748 5.2)", arguments: Fixture.vectors("x25519_rfc7748", kind: "iterated"))
    func iterated(_ vector: Vector) throws {
        var k = vector.hex("initial")
        var u = vector.hex("initial")
        for _ in 0..<vector.int("iterations") {
            let result = try AgreementPrivateKey(rawRepresentation: SecretBytes(copying: k))
                .sharedSecret(with: AgreementPublicKey(bytes: u))
            u = k
            k = result.withUnsafeBytes { Array($0) }
        }
        #expect(k == vector.hex("output"))
    }

    @Test("X25519 Diffie-Hellman (RFC 7748 6.1)", arguments: Fixture.vectors("x25519_rfc7748", kind: "diffie_hellman"))
    func diffieHellman(_ vector: Vector) throws {
        let alice = try AgreementPrivateKey(rawRepresentation: SecretBytes(copying: vector.hex("alice_private")))
        let bob = try AgreementPrivateKey(rawRepresentation: SecretBytes(copying: vector.hex("bob_private")))
        #expect(alice.publicKey.bytes == vector.hex("alice_public"))
        #expect(bob.publicKey.bytes == vector.hex("bob_public"))
        let ab = try alice.sharedSecret(with: bob.publicKey)
        let ba = try bob.sharedSecret(with: alice.publicKey)
        #expect(ab.withUnsafeBytes { Array($0) } == vector.hex("shared"))
        #expect(ab.constantTimeEquals(ba))
    }

    @Test("X25519 with a small-order public key fails instead of yielding a zero secret")
    func smallOrderPeer() throws {
        let key = AgreementPrivateKey()
        // u = 0 and u = 1 have small order (RFC 7748 section 6.1 says to check for all-zero output).
        for u in [[UInt8](repeating: 0, count: 32), [1] + [UInt8](repeating: 0, count: 31)] {
            #expect(throws: CryptoError.weakSharedSecret) { try key.sharedSecret(with: AgreementPublicKey(bytes: u)) }
        }
    }

    @Test("Ed25519 (RFC 8032 7.1)", arguments: Fixture.vectors("ed25519_rfc8032"))
    func ed25519(_ vector: Vector) throws {
        let key = try SigningKey(seed: SecretBytes(copying: vector.hex("secret_key")))
        #expect(key.publicKey.bytes == vector.hex("public_key"))
        let signature = key.signRaw(vector.hex("message"))
        #expect(signature.bytes == vector.hex("signature"))

        let publicKey = try SigningPublicKey(bytes: vector.hex("public_key"))
        let published = try Signature(bytes: vector.hex("signature"))
        #expect(publicKey.verifyRaw(published, for: vector.hex("message")))
        // Any altered bit in the signature or the message must fail.
        #expect(!publicKey.verifyRaw(try Signature(bytes: flipped(published.bytes, at: 0)), for: vector.hex("message")))
        #expect(!publicKey.verifyRaw(try Signature(bytes: flipped(published.bytes, at: 63)), for: vector.hex("message")))
        #expect(!publicKey.verifyRaw(published, for: vector.hex("message") + [0]))
    }
}
