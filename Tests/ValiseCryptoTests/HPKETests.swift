import Testing
import ValiseCrypto

/// HPKE (RFC 9180) Base mode: RFC 9180's published vector for DHKEM(X25519, HKDF-SHA256),
/// HKDF-SHA256, ChaCha20-Poly1305 proves the path and parameters `HPKEXWing` shares; X-Wing
/// itself has no published HPKE vector, so it is tested by round trips and refusals.
@Suite("HPKE")
struct HPKETests {
    @Test("RFC 9180 A.2.1, Base mode, sequence 0", arguments: Fixture.vectors("hpke_rfc9180"))
    func rfc9180(_ vector: Vector) throws {
        // The vector's suite is the one Valise uses, apart from the KEM.
        #expect(vector.int("mode") == 0)
        #expect(vector.int("kem_id") == Int(HPKEX25519.kemIdentifier))
        #expect(vector.int("kdf_id") == Int(HPKEXWing.kdfIdentifier))
        #expect(vector.int("aead_id") == Int(HPKEXWing.aeadIdentifier))
        let key = try AgreementPrivateKey(rawRepresentation: SecretBytes(copying: vector.hex("skRm")))
        #expect(key.publicKey.bytes == vector.hex("pkRm"))
        let plaintext = try HPKEX25519.open(
            vector.hex("ct"), encapsulatedKey: vector.hex("enc"), with: key, info: vector.hex("info"), aad: vector.hex("aad")
        )
        #expect(plaintext == vector.hex("pt"))
    }

    @Test("RFC 9180 vector: every altered input is refused", arguments: Fixture.vectors("hpke_rfc9180"))
    func rfc9180Refusals(_ vector: Vector) throws {
        let key = try AgreementPrivateKey(rawRepresentation: SecretBytes(copying: vector.hex("skRm")))
        let ct = vector.hex("ct"), enc = vector.hex("enc"), info = vector.hex("info"), aad = vector.hex("aad")
        let refused: [(String, () throws -> [UInt8])] = [
            ("ciphertext bit", { try HPKEX25519.open(flipped(ct, at: 3), encapsulatedKey: enc, with: key, info: info, aad: aad) }),
            ("tag bit", { try HPKEX25519.open(flipped(ct, at: ct.count - 1), encapsulatedKey: enc, with: key, info: info, aad: aad) }),
            ("truncated", { try HPKEX25519.open(Array(ct.dropLast()), encapsulatedKey: enc, with: key, info: info, aad: aad) }),
            ("shorter than a tag", { try HPKEX25519.open(Array(ct.prefix(15)), encapsulatedKey: enc, with: key, info: info, aad: aad) }),
            ("encapsulated key bit", { try HPKEX25519.open(ct, encapsulatedKey: flipped(enc, at: 0), with: key, info: info, aad: aad) }),
            ("info", { try HPKEX25519.open(ct, encapsulatedKey: enc, with: key, info: flipped(info, at: 0), aad: aad) }),
            ("aad", { try HPKEX25519.open(ct, encapsulatedKey: enc, with: key, info: info, aad: flipped(aad, at: 0)) }),
            ("wrong key", { try HPKEX25519.open(ct, encapsulatedKey: enc, with: AgreementPrivateKey(), info: info, aad: aad) }),
        ]
        for (what, attempt) in refused {
            #expect(throws: CryptoError.authenticationFailed, "\(what)") { try attempt() }
        }
        #expect(throws: CryptoError.invalidLength("", expected: 0, actual: 0)) {
            try HPKEX25519.open(ct, encapsulatedKey: Array(enc.dropLast()), with: key, info: info, aad: aad)
        }
    }

    @Test("The suite is X-Wing (0x647a), HKDF-SHA256 (0x0001), ChaCha20-Poly1305 (0x0003)")
    func suiteIdentifiers() {
        #expect(HPKEXWing.kemIdentifier == 0x647a)
        #expect(HPKEXWing.kdfIdentifier == 0x0001)
        #expect(HPKEXWing.aeadIdentifier == 0x0003)
        #expect(HPKEX25519.kemIdentifier == 0x0020)
    }

    @Test("X-Wing HPKE round trips", arguments: [0, 1, 100, 4096])
    func xWingRoundTrip(_ length: Int) throws {
        let key = XWingPrivateKey()
        let plaintext = Random.bytes(count: length)
        let info = Array("valise/test/hpke".utf8), aad = Array("outer header".utf8)
        let sealed = try HPKEXWing.seal(plaintext, to: key.publicKey, info: info, aad: aad)
        #expect(sealed.encapsulatedKey.count == HPKEXWing.encapsulatedKeyByteCount)
        #expect(sealed.ciphertext.count == length + HPKEXWing.tagByteCount)
        let opened = try HPKEXWing.open(sealed.ciphertext, encapsulatedKey: sealed.encapsulatedKey, with: key, info: info, aad: aad)
        #expect(opened == plaintext)
        // A second seal of the same message uses a new encapsulation.
        let again = try HPKEXWing.seal(plaintext, to: key.publicKey, info: info, aad: aad)
        #expect(again.encapsulatedKey != sealed.encapsulatedKey)
    }

    @Test("X-Wing HPKE: every altered input is refused")
    func xWingRefusals() throws {
        let key = XWingPrivateKey()
        let info = Array("valise/test/hpke".utf8), aad = Array("outer header".utf8)
        let sealed = try HPKEXWing.seal(Array("attack at dawn".utf8), to: key.publicKey, info: info, aad: aad)
        let ct = sealed.ciphertext, enc = sealed.encapsulatedKey
        let refused: [(String, () throws -> [UInt8])] = [
            ("ciphertext bit", { try HPKEXWing.open(flipped(ct, at: 0), encapsulatedKey: enc, with: key, info: info, aad: aad) }),
            ("tag bit", { try HPKEXWing.open(flipped(ct, at: ct.count - 1), encapsulatedKey: enc, with: key, info: info, aad: aad) }),
            ("truncated", { try HPKEXWing.open(Array(ct.dropLast()), encapsulatedKey: enc, with: key, info: info, aad: aad) }),
            ("empty", { try HPKEXWing.open([], encapsulatedKey: enc, with: key, info: info, aad: aad) }),
            ("ML-KEM part bit", { try HPKEXWing.open(ct, encapsulatedKey: flipped(enc, at: 10), with: key, info: info, aad: aad) }),
            ("X25519 part bit", { try HPKEXWing.open(ct, encapsulatedKey: flipped(enc, at: enc.count - 10), with: key, info: info, aad: aad) }),
            ("info", { try HPKEXWing.open(ct, encapsulatedKey: enc, with: key, info: flipped(info, at: 0), aad: aad) }),
            ("aad", { try HPKEXWing.open(ct, encapsulatedKey: enc, with: key, info: info, aad: flipped(aad, at: 0)) }),
            ("no aad", { try HPKEXWing.open(ct, encapsulatedKey: enc, with: key, info: info, aad: []) }),
            ("wrong key", { try HPKEXWing.open(ct, encapsulatedKey: enc, with: XWingPrivateKey(), info: info, aad: aad) }),
        ]
        for (what, attempt) in refused {
            #expect(throws: CryptoError.authenticationFailed, "\(what)") { try attempt() }
        }
        for badLength in [0, enc.count - 1, enc.count + 1] {
            let encapsulated = Array((enc + [0]).prefix(badLength))
            #expect(throws: CryptoError.invalidLength("", expected: 0, actual: 0)) {
                try HPKEXWing.open(ct, encapsulatedKey: encapsulated, with: key, info: info, aad: aad)
            }
        }
    }
}
