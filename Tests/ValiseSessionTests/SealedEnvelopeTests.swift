import Testing
import ValiseCrypto
@testable import ValiseSession

@Suite("Sealed envelopes")
struct SealedEnvelopeTests {
    let sender = try! SigningKey(seed: SecretBytes(copying: [UInt8](repeating: 1, count: 32)))
    let recipient = try! SigningKey(seed: SecretBytes(copying: [UInt8](repeating: 2, count: 32)))
    let envelopeKey = try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: [UInt8](repeating: 3, count: 32)))
    let id = [UInt8](repeating: 0xAB, count: 16)

    /// A checkpoint's shape (version 1, 145 bytes): what the envelope checks of it.
    static let checkpoint = [1] + [UInt8](repeating: 0xC0, count: SealedEnvelope.checkpointByteCount - 1)

    func envelope(_ message: [UInt8], precedence: UInt8 = 3, ttl: UInt8 = 2, checkpoint: [UInt8]? = nil) -> SealedEnvelope {
        SealedEnvelope(
            id: id, recipient: recipient.publicKey, precedence: precedence, ttlClass: ttl, sender: sender.publicKey,
            senderHead: .init(sequence: 42, hash: [UInt8](repeating: 9, count: 32)), senderCheckpoint: checkpoint, timestamp: 1_795_000_000,
            sessionMessage: message)
    }

    func open(_ sealed: [UInt8], precedence: UInt8 = 3, ttl: UInt8 = 2, id: [UInt8]? = nil, recipient: SigningPublicKey? = nil) throws -> SealedEnvelope {
        try SealedEnvelope.open(
            sealed, with: envelopeKey, expectedID: id ?? self.id, recipient: recipient ?? self.recipient.publicKey,
            precedence: precedence, ttlClass: ttl)
    }

    @Test("seal and open round-trip; the size is a bucket and does not depend on the message's length within it")
    func roundTrip() throws {
        for length in [0, 1, 500, 694, 695, 839, 840, 3000, 60_000, 200_000] {
            for checkpoint in [nil, Self.checkpoint] {
                let message = [UInt8](repeating: 0x5A, count: length)
                let sealed = try envelope(message, checkpoint: checkpoint).sealed(to: envelopeKey.publicKey)
                #expect(SealedEnvelope.buckets.contains(sealed.count), "length \(length) → \(sealed.count)")
                #expect(sealed.count == SealedEnvelope.bucket(forSessionMessageOf: length, withCheckpoint: checkpoint != nil))
                #expect(try open(sealed) == envelope(message, checkpoint: checkpoint))
            }
        }
        // The edges of the smallest bucket: 1024 - 48 - 136 - 1 = 839 bytes fit, 694 with a
        // checkpoint (145 bytes more).
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 839) == 1024)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 840) == 4096)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 694, withCheckpoint: true) == 1024)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 695, withCheckpoint: true) == 4096)
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
        let withCheckpoint = envelope([7, 7, 7], checkpoint: Self.checkpoint).encoded
        let hasCheckpointAt = SealedEnvelope.fixedByteCount - 5
        var badPrecedence = good
        badPrecedence[1 + 16 + 32] = 9
        var badLength = good
        badLength[SealedEnvelope.fixedByteCount - 1] = 200
        var badFlag = good
        badFlag[hasCheckpointAt] = 2
        var badCheckpointVersion = withCheckpoint
        badCheckpointVersion[hasCheckpointAt + 1] = 2
        var flagWithoutCheckpoint = withCheckpoint
        flagWithoutCheckpoint[hasCheckpointAt] = 0
        let block = 1024 - SealedBox.overheadByteCount
        func sealed(_ contents: [UInt8]) throws -> [UInt8] {
            try SealedBox.seal(Padding.pad(contents, toMultipleOf: block), to: envelopeKey.publicKey)
        }
        for contents in [badPrecedence, badLength, badFlag, badCheckpointVersion, flagWithoutCheckpoint, Array(good.prefix(SealedEnvelope.fixedByteCount - 1))] {
            #expect(throws: SessionError.malformed("")) { try open(sealed(contents)) }
        }
        // Version 1 (no checkpoint field) is no longer read: the error names both versions.
        for version: UInt8 in [0, 1, 3] {
            var other = good
            other[0] = version
            let error = #expect(throws: SessionError.self) { try open(sealed(other)) }
            #expect(error?.code == "envelope-version")
            #expect(error?.message.contains("version \(version)") == true && error?.message.contains("version 2") == true)
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
        let prekeySignature = PQXDH.signPrekey(envelopeKey.publicKey, with: recipient)
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
