import Testing
import ValiseCrypto
@testable import ValiseSession

@Suite("Sealed envelopes")
struct SealedEnvelopeTests {
    let sender = try! SigningKey(seed: SecretBytes(copying: [UInt8](repeating: 1, count: 32)))
    let recipient = try! SigningKey(seed: SecretBytes(copying: [UInt8](repeating: 2, count: 32)))
    let envelopeKey = try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: [UInt8](repeating: 3, count: 32)))
    let id = [UInt8](repeating: 0xAB, count: 16)

    func envelope(_ message: [UInt8], precedence: UInt8 = 3, ttl: UInt8 = 2) -> SealedEnvelope {
        SealedEnvelope(
            id: id, recipient: recipient.publicKey, precedence: precedence, ttlClass: ttl, sender: sender.publicKey,
            senderHead: .init(sequence: 42, hash: [UInt8](repeating: 9, count: 32)), timestamp: 1_795_000_000, sessionMessage: message)
    }

    func open(_ sealed: [UInt8], precedence: UInt8 = 3, ttl: UInt8 = 2, id: [UInt8]? = nil, recipient: SigningPublicKey? = nil) throws -> SealedEnvelope {
        try SealedEnvelope.open(
            sealed, with: envelopeKey, expectedID: id ?? self.id, recipient: recipient ?? self.recipient.publicKey,
            precedence: precedence, ttlClass: ttl)
    }

    @Test("seal and open round-trip; the size is a bucket and does not depend on the message's length within it")
    func roundTrip() throws {
        for length in [0, 1, 500, 841, 842, 3000, 60_000, 200_000] {
            let message = [UInt8](repeating: 0x5A, count: length)
            let sealed = try envelope(message).sealed(to: envelopeKey.publicKey)
            #expect(SealedEnvelope.buckets.contains(sealed.count), "length \(length) → \(sealed.count)")
            #expect(sealed.count == SealedEnvelope.bucket(forSessionMessageOf: length))
            #expect(try open(sealed) == envelope(message))
        }
        // The edges of the smallest bucket: 1024 - 48 - 135 - 1 = 840 bytes fit.
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 840) == 1024)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 841) == 4096)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 262_144) == nil)
        #expect(throws: SessionError(code: "too-large", message: "")) { try envelope([UInt8](repeating: 0, count: 262_144)).sealed(to: envelopeKey.publicKey) }
    }

    @Test("the recipient refuses an envelope whose inner id, recipient, precedence or TTL class differs from what the relay delivered")
    func outerMustMatchInner() throws {
        let sealed = try envelope([1, 2, 3]).sealed(to: envelopeKey.publicKey)
        #expect(throws: SessionError(code: "id-mismatch", message: "")) { try open(sealed, id: [UInt8](repeating: 0xAC, count: 16)) }
        #expect(throws: SessionError(code: "not-for-this-device", message: "")) { try open(sealed, recipient: sender.publicKey) }
        #expect(throws: SessionError(code: "label-mismatch", message: "")) { try open(sealed, precedence: 0) }
        #expect(throws: SessionError(code: "label-mismatch", message: "")) { try open(sealed, ttl: 4) }
    }

    @Test("a tampered, truncated or wrongly keyed envelope does not open, and says so")
    func tamper() throws {
        let sealed = try envelope([1, 2, 3]).sealed(to: envelopeKey.publicKey)
        for index in [0, 31, 32, 500, sealed.count - 1] {
            var altered = sealed
            altered[index] ^= 1
            #expect(throws: SessionError(code: "unsealable", message: "")) { try open(altered) }
        }
        #expect(throws: SessionError.malformed("")) { try open(Array(sealed.dropLast())) }
        let other = try envelope([1, 2, 3]).sealed(to: AgreementPrivateKey().publicKey)
        #expect(throws: SessionError(code: "unsealable", message: "")) { try open(other) }
    }

    @Test("contents that are sealed correctly but malformed inside (bad version, lengths, labels, padding) are refused")
    func malformedInside() throws {
        let good = envelope([7, 7, 7]).encoded
        var badVersion = good
        badVersion[0] = 2
        var badPrecedence = good
        badPrecedence[1 + 16 + 32] = 9
        var badLength = good
        badLength[SealedEnvelope.fixedByteCount - 1] = 200
        let block = 1024 - SealedBox.overheadByteCount
        for contents in [badVersion, badPrecedence, badLength] {
            let sealed = try SealedBox.seal(Padding.pad(contents, toMultipleOf: block), to: envelopeKey.publicKey)
            #expect(throws: SessionError.malformed("")) { try open(sealed) }
        }
        // No padding marker: all zeroes after the contents.
        let unpadded = try SealedBox.seal(good + [UInt8](repeating: 0, count: block - good.count), to: envelopeKey.publicKey)
        #expect(throws: SessionError(code: "unsealable", message: "")) { try open(unpadded) }
    }

    @Test("envelope keys are signed by the identity key for their own purpose")
    func envelopeKeySignature() throws {
        let signature = SealedEnvelope.signEnvelopeKey(envelopeKey.publicKey, with: recipient)
        #expect(SealedEnvelope.isValidEnvelopeKey(envelopeKey.publicKey, signature: signature, identity: recipient.publicKey))
        #expect(!SealedEnvelope.isValidEnvelopeKey(envelopeKey.publicKey, signature: signature, identity: sender.publicKey))
        // A signed-prekey signature over the same key is not an envelope-key signature.
        let prekeySignature = X3DH.signPrekey(envelopeKey.publicKey, with: recipient)
        #expect(!SealedEnvelope.isValidEnvelopeKey(envelopeKey.publicKey, signature: prekeySignature, identity: recipient.publicKey))
    }

    @Test("Padding: sodium_pad to a block, and unpad refuses what is not padding")
    func padding() throws {
        #expect(Padding.pad([1, 2, 3], toMultipleOf: 8) == [1, 2, 3, 0x80, 0, 0, 0, 0])
        #expect(Padding.pad([UInt8](repeating: 1, count: 8), toMultipleOf: 8).count == 16)
        #expect(try Padding.unpad([1, 2, 3, 0x80, 0, 0, 0, 0], blockSize: 8) == [1, 2, 3])
        #expect(throws: CryptoError.invalidParameter("")) { try Padding.unpad([1, 2, 3, 0x80, 0, 0, 1, 0], blockSize: 8) }
        #expect(throws: CryptoError.invalidParameter("")) { try Padding.unpad([1, 2, 3, 0x80, 0, 0, 0], blockSize: 8) }
    }
}
