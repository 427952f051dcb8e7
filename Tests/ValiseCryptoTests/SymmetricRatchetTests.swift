import Testing
@testable import ValiseCrypto

/// `SymmetricRatchet` computes in one arena scratch slot what `HMACSHA256`, `HKDF` and
/// `XChaChaPoly` compute with guarded pages of their own (those have published vectors):
/// the two must agree byte for byte.
@Suite("SymmetricRatchet")
struct SymmetricRatchetTests {
    static let parameters = SymmetricRatchet.Parameters(
        chainConstant: 0x02, messageConstant: 0x01, salt: [UInt8](repeating: 0, count: 32), info: Array("Valise_DR_Message_v1".utf8))

    func bytes(_ secret: SecretBytes) -> [UInt8] { secret.withUnsafeBytes { Array($0) } }

    @Test("a chain step is KDF_CK over HMAC-SHA-256", arguments: 0..<8)
    func chainStep(_ round: Int) {
        let chainKey = SecretBytes.random(count: 32)
        let expectedNext = bytes(HMACSHA256.authenticate(key: chainKey, message: [.bytes([0x02])]))
        let expectedMessage = bytes(HMACSHA256.authenticate(key: chainKey, message: [.bytes([0x01])]))
        let (next, message) = SymmetricRatchet.step(chainKey, Self.parameters)
        #expect(bytes(next) == expectedNext)
        #expect(bytes(message) == expectedMessage)
        // The same again (the scratch slot was wiped and reused), and on down the chain.
        let (again, messageAgain) = SymmetricRatchet.step(SecretBytes(copying: bytes(chainKey)), Self.parameters)
        #expect(bytes(again) == expectedNext && bytes(messageAgain) == expectedMessage)
        let (third, _) = SymmetricRatchet.step(next, Self.parameters)
        #expect(bytes(third) == bytes(HMACSHA256.authenticate(key: SecretBytes(copying: expectedNext), message: [.bytes([0x02])])))
    }

    @Test("sealing is XChaCha20-Poly1305 under HKDF-SHA-256's key and nonce", arguments: [0, 1, 255, 256, 4000])
    func seal(_ length: Int) throws {
        let messageKey = SecretBytes.random(count: 32)
        let plaintext = Random.bytes(count: length)
        let ad = Random.bytes(count: 64)
        let header = Random.bytes(count: 40)
        let derived = try HKDF<HMACSHA256>.deriveKey(
            inputKeyMaterial: messageKey, salt: Self.parameters.salt, info: Self.parameters.info, outputByteCount: 56)
        let key = try SymmetricKey(derived.slice(0..<32))
        let nonce = try XChaChaPoly.Nonce(bytes: bytes(derived.slice(32..<56)))
        let expected = XChaChaPoly.seal(plaintext, using: key, nonce: nonce, authenticating: ad + header)

        let sealed = SymmetricRatchet.seal(plaintext, messageKey: messageKey, Self.parameters, associatedData: ad, header: header)
        #expect(sealed == expected)
        #expect(try SymmetricRatchet.open(sealed, messageKey: messageKey, Self.parameters, associatedData: ad, header: header) == plaintext)
    }

    @Test("a tampered, truncated or misaddressed message does not open")
    func refusals() {
        let key = SecretBytes.random(count: 32)
        let ad = Random.bytes(count: 64)
        let header = Random.bytes(count: 40)
        let sealed = SymmetricRatchet.seal(Random.bytes(count: 100), messageKey: key, Self.parameters, associatedData: ad, header: header)
        func refused(_ sealed: [UInt8], key: SecretBytes, ad: [UInt8], header: [UInt8]) -> Bool {
            do {
                _ = try SymmetricRatchet.open(sealed, messageKey: key, Self.parameters, associatedData: ad, header: header)
                return false
            } catch {
                return error.code == CryptoError.authenticationFailed.code
            }
        }
        var flipped = sealed
        flipped[7] ^= 1
        #expect(refused(flipped, key: key, ad: ad, header: header))
        #expect(refused(Array(sealed.dropLast()), key: key, ad: ad, header: header))
        #expect(refused(Array(sealed.prefix(15)), key: key, ad: ad, header: header))
        #expect(refused([], key: key, ad: ad, header: header))
        #expect(refused(sealed, key: SecretBytes.random(count: 32), ad: ad, header: header))
        var otherHeader = header
        otherHeader[39] ^= 1
        #expect(refused(sealed, key: key, ad: ad, header: otherHeader))
        // AD ‖ header is what counts, not where the split falls.
        #expect(!refused(sealed, key: key, ad: Array(ad.prefix(60)), header: Array(ad.suffix(4)) + header))
    }
}
