import Testing
@testable import ValiseCrypto

/// BLAKE2b (RFC 7693, BLAKE2 KAT), HMAC-SHA-256 (RFC 4231), HMAC-BLAKE2b and HKDF-SHA-256
/// (RFC 5869); Fixtures/SOURCES.md names the sources.
@Suite("Hashes, HMAC and HKDF")
struct HashVectorTests {
    @Test("BLAKE2b (RFC 7693, BLAKE2 reference KAT)", arguments: Fixture.vectors("blake2b"))
    func blake2b(_ vector: Vector) throws {
        let key = vector.hex("key")
        let length = vector.int("output_length")
        let output = key.isEmpty
            ? BLAKE2b.hash(vector.hex("input"), outputByteCount: length)
            : try BLAKE2b.hash(vector.hex("input"), key: SecretBytes(copying: key), outputByteCount: length)
        #expect(output == vector.hex("output"))
    }

    @Test("BLAKE2b incremental equals one-shot")
    func blake2bIncremental() {
        let data = (0..<300).map { UInt8($0 & 0xff) }
        var hasher = BLAKE2b.Hasher(outputByteCount: 32)
        hasher.update(Array(data[0..<7]))
        hasher.update(Array(data[7...]))
        #expect(hasher.finalize() == BLAKE2b.hash(data, outputByteCount: 32))
    }

    @Test("HMAC-SHA-256 (RFC 4231)", arguments: Fixture.vectors("hmac_sha256_rfc4231"))
    func hmacSHA256(_ vector: Vector) {
        var tag = HMACSHA256.tag(for: vector.hex("data"), key: SecretBytes(copying: vector.hex("key")))
        if let truncate = vector.string("truncate_bytes").flatMap(Int.init) { tag = Array(tag.prefix(truncate)) }
        #expect(tag == vector.hex("mac"))
    }

    @Test("HMAC-BLAKE2b as Noise defines it", arguments: Fixture.vectors("hmac_blake2b_python"))
    func hmacBLAKE2b(_ vector: Vector) {
        let tag = HMACBLAKE2b.tag(for: vector.hex("data"), key: SecretBytes(copying: vector.hex("key")))
        #expect(tag == vector.hex("mac"))
    }

    @Test("HMAC over several parts equals HMAC over their concatenation")
    func hmacParts() {
        let key = SecretBytes.random(count: 32)
        let whole = HMACBLAKE2b.authenticate(key: key, message: [.bytes([1, 2, 3, 4])])
        let parts = HMACBLAKE2b.authenticate(key: key, message: [.bytes([1]), .secret(SecretBytes(copying: [2, 3])), .bytes([4])])
        #expect(whole.constantTimeEquals(parts))
        #expect(HMACSHA256.isValidTag(HMACSHA256.tag(for: [9], key: key), for: [9], key: key))
        #expect(!HMACSHA256.isValidTag(HMACSHA256.tag(for: [9], key: key), for: [8], key: key))
    }

    @Test("HKDF-SHA-256 (RFC 5869)", arguments: Fixture.vectors("hkdf_sha256_rfc5869"))
    func hkdf(_ vector: Vector) throws {
        let ikm = SecretBytes(copying: vector.hex("ikm"))
        let prk = HKDF<HMACSHA256>.extract(salt: vector.hex("salt"), inputKeyMaterial: ikm)
        #expect(prk.withUnsafeBytes { Array($0) } == vector.hex("prk"))
        let okm = try HKDF<HMACSHA256>.expand(pseudoRandomKey: prk, info: vector.hex("info"), outputByteCount: vector.int("length"))
        #expect(okm.withUnsafeBytes { Array($0) } == vector.hex("okm"))
        let derived = try HKDF<HMACSHA256>.deriveKey(
            inputKeyMaterial: ikm, salt: vector.hex("salt"), info: vector.hex("info"), outputByteCount: vector.int("length"))
        #expect(derived.constantTimeEquals(okm))
    }

    @Test("HKDF refuses outputs longer than 255 blocks")
    func hkdfBound() throws {
        let prk = SecretBytes.random(count: 32)
        #expect(throws: CryptoError.self) {
            try HKDF<HMACSHA256>.expand(pseudoRandomKey: prk, info: [], outputByteCount: 255 * 32 + 1)
        }
        #expect(try HKDF<HMACSHA256>.expand(pseudoRandomKey: prk, info: [], outputByteCount: 255 * 32).count == 255 * 32)
    }
}
