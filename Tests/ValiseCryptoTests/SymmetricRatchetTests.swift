import Testing
@testable import ValiseCrypto

/// `SymmetricRatchet` computes in pooled scratch what `HMACSHA256`, `HKDF` and
/// `XChaChaPoly` compute with guarded pages of their own (those have published vectors):
/// the two must agree byte for byte.
@Suite("SymmetricRatchet and PooledSecret")
struct SymmetricRatchetTests {
    static let parameters = SymmetricRatchet.Parameters(
        chainConstant: 0x02, messageConstant: 0x01, salt: [UInt8](repeating: 0, count: 32), info: Array("Valise_DR_Message_v1".utf8))

    func bytes(_ secret: PooledSecret) -> [UInt8] { secret.withUnsafeBytes { Array($0) } }
    func bytes(_ secret: SecretBytes) -> [UInt8] { secret.withUnsafeBytes { Array($0) } }

    @Test("a chain step is KDF_CK over HMAC-SHA-256", arguments: 0..<8)
    func chainStep(_ round: Int) {
        let chainKey = SecretBytes.random(count: 32)
        let expectedNext = bytes(HMACSHA256.authenticate(key: chainKey, message: [.bytes([0x02])]))
        let expectedMessage = bytes(HMACSHA256.authenticate(key: chainKey, message: [.bytes([0x01])]))
        let (next, message) = SymmetricRatchet.step(chainKey, Self.parameters)
        #expect(bytes(next) == expectedNext)
        #expect(bytes(message) == expectedMessage)
        // The same from a pooled chain key, and on down the chain.
        let (again, messageAgain) = SymmetricRatchet.step(PooledSecret(copying: chainKey), Self.parameters)
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

        let pooled = PooledSecret(copying: messageKey)
        let sealed = SymmetricRatchet.seal(plaintext, messageKey: pooled, Self.parameters, associatedData: ad, header: header)
        #expect(sealed == expected)
        #expect(try SymmetricRatchet.open(sealed, messageKey: pooled, Self.parameters, associatedData: ad, header: header) == plaintext)
        #expect(try SymmetricRatchet.open(sealed, messageKey: messageKey, Self.parameters, associatedData: ad, header: header) == plaintext)
    }

    @Test("a tampered, truncated or misaddressed message does not open")
    func refusals() {
        let key = PooledSecret(copying: SecretBytes.random(count: 32))
        let ad = Random.bytes(count: 64)
        let header = Random.bytes(count: 40)
        let sealed = SymmetricRatchet.seal(Random.bytes(count: 100), messageKey: key, Self.parameters, associatedData: ad, header: header)
        func refused(_ sealed: [UInt8], key: PooledSecret, ad: [UInt8], header: [UInt8]) -> Bool {
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
        #expect(refused(sealed, key: PooledSecret(copying: SecretBytes.random(count: 32)), ad: ad, header: header))
        var otherHeader = header
        otherHeader[39] ^= 1
        #expect(refused(sealed, key: key, ad: ad, header: otherHeader))
        // AD ‖ header is what counts, not where the split falls.
        #expect(!refused(sealed, key: key, ad: Array(ad.prefix(60)), header: Array(ad.suffix(4)) + header))
    }

    @Test("a pooled secret holds its bytes, hides them, and compares in constant time")
    func pooledSecret() {
        let source = SecretBytes(copying: Array("hunter2hunter2".utf8))
        let secret = PooledSecret(copying: source)
        #expect(bytes(secret) == Array("hunter2hunter2".utf8))
        #expect(bytes(PooledSecret(copying: source, range: 7..<14)) == Array("hunter2".utf8))
        #expect(bytes(secret.secretBytes) == bytes(source))
        for text in ["\(secret)", String(reflecting: secret)] {
            #expect(!text.contains("hunter2") && text.contains("redacted"))
        }
        #expect(Mirror(reflecting: secret).children.isEmpty)
        #expect(secret.constantTimeEquals(PooledSecret(copying: source)))
        #expect(!secret.constantTimeEquals(PooledSecret(copying: source, range: 0..<13)))
        #expect(!secret.constantTimeEquals(PooledSecret(copying: SecretBytes(copying: Array("hunter2hunter3".utf8)))))
    }

    @Test("the pool grows past a slab, and a slot comes back wiped")
    func pool() {
        let pool = SecretPool(slotByteCount: 64, slotsPerSlab: 4)
        let slots = (0..<10).map { _ in pool.take() }
        #expect(Set(slots).count == 10)
        for (index, slot) in slots.enumerated() {
            #expect(UnsafeRawBufferPointer(start: slot, count: 64).allSatisfy { $0 == 0 })
            #expect(Int(bitPattern: slot) % 64 == 0)
            slot.initializeMemory(as: UInt8.self, repeating: UInt8(index + 1), count: 64)
        }
        for slot in slots { pool.give(slot) }
        let again = (0..<10).map { _ in pool.take() }
        #expect(Set(again) == Set(slots))
        for slot in again {
            #expect(UnsafeRawBufferPointer(start: slot, count: 64).allSatisfy { $0 == 0 })
            pool.give(slot)
        }
    }

    @Test("many pooled secrets at once stay distinct")
    func manySecrets() {
        let secrets = (0..<600).map { index in PooledSecret(copying: SecretBytes(copying: [UInt8(index % 251), UInt8(index / 251)])) }
        for (index, secret) in secrets.enumerated() {
            #expect(bytes(secret) == [UInt8(index % 251), UInt8(index / 251)])
        }
    }
}
