import Testing
import ValiseCrypto

/// Known-answer tests for ML-KEM-768, ML-KEM-1024 (FIPS 203) and X-Wing, copied from
/// swift-crypto 4.5.2's test data (Fixtures/SOURCES.md). swift-crypto's public API has no
/// deterministic encapsulation, so the vectors check key generation from the seed and
/// decapsulation; encapsulation is covered by live round trips.
@Suite("Post-quantum KEMs")
struct KEMVectorTests {
    @Test("ML-KEM-768 known answers", arguments: Fixture.vectors("mlkem768_kat"))
    func mlkem768(_ vector: Vector) throws {
        try checkKnownAnswer(MLKEM768Scheme.self, vector)
    }

    @Test("ML-KEM-1024 known answers", arguments: Fixture.vectors("mlkem1024_kat"))
    func mlkem1024(_ vector: Vector) throws {
        try checkKnownAnswer(MLKEM1024Scheme.self, vector)
    }

    @Test("X-Wing known answers (draft-connolly-cfrg-xwing-kem, Appendix C)", arguments: Fixture.vectors("xwing_draft"))
    func xWing(_ vector: Vector) throws {
        try checkKnownAnswer(XWingScheme.self, vector)
    }

    @Test("Tampered, truncated, lengthened and misdirected ciphertexts are refused")
    func tamperedCiphertexts() throws {
        try checkRefusals(MLKEM768Scheme.self, vector: Fixture.vectors("mlkem768_kat")[0])
        try checkRefusals(MLKEM1024Scheme.self, vector: Fixture.vectors("mlkem1024_kat")[0])
        try checkRefusals(XWingScheme.self, vector: Fixture.vectors("xwing_draft")[0])
    }

    @Test("Encapsulation round-trips to a fresh key, and each encapsulation is new")
    func roundTrip() throws {
        try checkRoundTrip(MLKEM768Scheme.self)
        try checkRoundTrip(MLKEM1024Scheme.self)
        try checkRoundTrip(XWingScheme.self)
    }

    @Test("Malformed public keys and seeds are refused with an error, not a crash")
    func malformedKeys() throws {
        try checkMalformed(MLKEM768Scheme.self)
        try checkMalformed(MLKEM1024Scheme.self)
        try checkMalformed(XWingScheme.self)
    }

    /// swift-crypto's X-Wing public key only checks its length (BoringSSL parses the key
    /// when encapsulating), so a key from the network with a broken ML-KEM-768 part or a
    /// small-order X25519 part used to be accepted here and fail later, at the sender.
    @Test("X-Wing public keys are validated in both parts when read")
    func xWingPublicKeyParts() throws {
        let good = XWingPrivateKey().publicKey.bytes
        #expect(throws: CryptoError.invalidPublicKey("")) {
            try XWingPublicKey(bytes: outOfRangeCoefficients(good))
        }
        // The X25519 point of order 1 (u = 0) in the last 32 bytes.
        let smallOrder = Array(good.prefix(MLKEM768Scheme.parameters.publicKeyByteCount)) + [UInt8](repeating: 0, count: 32)
        #expect(throws: CryptoError.invalidPublicKey("")) {
            try XWingPublicKey(bytes: smallOrder)
        }
    }

    @Test("Descriptions never show the seed")
    func redaction() throws {
        let seed = Fixture.vectors("xwing_draft")[0].hex("seed")
        let key = try XWingPrivateKey(seed: SecretBytes(copying: seed))
        #expect(!key.description.contains(Hex.encode(seed.prefix(4))))
        #expect(key.description.contains("redacted"))
    }

    // MARK: - Helpers, generic over the scheme

    private func checkKnownAnswer<S: KEMScheme>(_: S.Type, _ vector: Vector) throws {
        let key = try KEMPrivateKey<S>(seed: SecretBytes(copying: vector.hex("seed")))
        #expect(key.publicKey.bytes == vector.hex("public_key"))
        #expect(try KEMPublicKey<S>(bytes: vector.hex("public_key")) == key.publicKey)
        let secret = try key.decapsulate(vector.hex("ciphertext"))
        #expect(secret.withUnsafeBytes { Array($0) } == vector.hex("shared_secret"))
        #expect(key.seed.withUnsafeBytes { Array($0) } == vector.hex("seed"))
    }

    private func checkRefusals<S: KEMScheme>(_: S.Type, vector: Vector) throws {
        let parameters = S.parameters
        let key = try KEMPrivateKey<S>(seed: SecretBytes(copying: vector.hex("seed")))
        let ciphertext = vector.hex("ciphertext")
        let expected = vector.hex("shared_secret")
        // Implicit rejection: a changed bit (in the ML-KEM part, and for X-Wing also in its
        // trailing X25519 share) yields an unrelated secret, not an error.
        for index in [0, ciphertext.count / 2, ciphertext.count - 1] {
            let secret = try key.decapsulate(flipped(ciphertext, at: index))
            #expect(secret.withUnsafeBytes { Array($0) } != expected, "\(parameters.name): bit flipped at \(index)")
        }
        // Another key decapsulates to another secret.
        let other = KEMPrivateKey<S>()
        #expect(try other.decapsulate(ciphertext).withUnsafeBytes { Array($0) } != expected)
        // Wrong lengths are refused before anything is computed.
        #expect(throws: CryptoError.invalidLength("", expected: 0, actual: 0)) {
            try key.decapsulate(Array(ciphertext.dropLast()))
        }
        #expect(throws: CryptoError.invalidLength("", expected: 0, actual: 0)) {
            try key.decapsulate(ciphertext + [0])
        }
        #expect(throws: CryptoError.invalidLength("", expected: 0, actual: 0)) {
            try key.decapsulate([])
        }
    }

    private func checkRoundTrip<S: KEMScheme>(_: S.Type) throws {
        let key = KEMPrivateKey<S>()
        let first = try key.publicKey.encapsulate()
        let second = try key.publicKey.encapsulate()
        #expect(first.ciphertext.count == S.parameters.ciphertextByteCount)
        #expect(first.sharedSecret.count == S.parameters.sharedSecretByteCount)
        #expect(try key.decapsulate(first.ciphertext).constantTimeEquals(first.sharedSecret))
        #expect(try key.decapsulate(second.ciphertext).constantTimeEquals(second.sharedSecret))
        #expect(first.ciphertext != second.ciphertext)
        #expect(!first.sharedSecret.constantTimeEquals(second.sharedSecret))
        // The seed is the whole private key: reloading it gives the same key.
        let reloaded = try KEMPrivateKey<S>(seed: key.seed)
        #expect(reloaded.publicKey == key.publicKey)
        #expect(try reloaded.decapsulate(first.ciphertext).constantTimeEquals(first.sharedSecret))
    }

    private func checkMalformed<S: KEMScheme>(_: S.Type) throws {
        let parameters = S.parameters
        let good = KEMPrivateKey<S>().publicKey.bytes
        #expect(throws: CryptoError.invalidLength("", expected: 0, actual: 0)) {
            try KEMPublicKey<S>(bytes: Array(good.dropLast()))
        }
        #expect(throws: CryptoError.invalidLength("", expected: 0, actual: 0)) {
            try KEMPublicKey<S>(bytes: good + [0])
        }
        #expect(throws: CryptoError.invalidPublicKey(""), "\(parameters.name)") {
            try KEMPublicKey<S>(bytes: outOfRangeCoefficients(good))
        }
        #expect(throws: CryptoError.invalidLength("", expected: 0, actual: 0)) {
            try KEMPrivateKey<S>(seed: SecretBytes(zeroes: parameters.seedByteCount - 1))
        }
    }

    /// Every ML-KEM coefficient must be below q = 3329 (FIPS 203's modulus check on an
    /// encapsulation key); 12 bits of ones encode 4095. X-Wing's key starts with its
    /// ML-KEM-768 key, so the same bytes break it too.
    private func outOfRangeCoefficients(_ key: [UInt8]) -> [UInt8] {
        var bytes = key
        for index in 0..<384 { bytes[index] = 0xff }
        return bytes
    }
}
