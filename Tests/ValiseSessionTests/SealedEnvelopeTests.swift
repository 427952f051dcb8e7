import Testing
import ValiseCrypto
@testable import ValiseSession

@Suite("Sealed envelopes")
struct SealedEnvelopeTests {
    let sender = try! SigningKey(seed: SecretBytes(copying: [UInt8](repeating: 1, count: 32)))
    let recipient = try! SigningKey(seed: SecretBytes(copying: [UInt8](repeating: 2, count: 32)))
    let envelopeKey = try! XWingPrivateKey(seed: SecretBytes(copying: [UInt8](repeating: 3, count: 32)))
    let id = [UInt8](repeating: 0xAB, count: 16)
    let mailbox = "bob@nairobi"

    /// A checkpoint's shape (version 1, 145 bytes): what the envelope checks of it.
    static let checkpoint = [1] + [UInt8](repeating: 0xC0, count: SealedEnvelope.checkpointByteCount - 1)

    func envelope(_ message: [UInt8], precedence: UInt8 = 3, ttl: UInt8 = 2, checkpoint: [UInt8]? = nil) -> SealedEnvelope {
        SealedEnvelope(
            id: id, recipient: recipient.publicKey, precedence: precedence, ttlClass: ttl, sender: sender.publicKey,
            senderHead: .init(sequence: 42, hash: [UInt8](repeating: 9, count: 32)), senderCheckpoint: checkpoint, timestamp: 1_795_000_000,
            sessionMessage: message)
    }

    func open(
        _ sealed: [UInt8], mailbox: String? = nil, precedence: UInt8 = 3, ttl: UInt8 = 2, applied: UInt8? = nil, id: [UInt8]? = nil,
        recipient: SigningPublicKey? = nil, key: XWingPrivateKey? = nil
    ) throws -> SealedEnvelope {
        let labels = SealedEnvelope.Labels(mailbox: mailbox ?? self.mailbox, id: id ?? self.id, precedence: precedence, ttlClass: ttl)
        return try SealedEnvelope.open(
            sealed, with: key ?? envelopeKey, labels: labels, appliedTTLClass: applied ?? ttl, recipients: [recipient ?? self.recipient.publicKey])
    }

    /// Padded contents sealed with HPKE under the right labels, as a sender of any version would.
    func sealedContents(_ contents: [UInt8], bucket: Int = 4096) throws -> [UInt8] {
        let padded = Padding.pad(contents, toMultipleOf: bucket - SealedEnvelope.overheadByteCount)
        let aad = try #require(envelope([]).labels(mailbox: mailbox).associatedData)
        let sealed = try HPKEXWing.seal(padded, to: envelopeKey.publicKey, info: SealedEnvelope.info, aad: aad)
        return sealed.encapsulatedKey + sealed.ciphertext
    }

    @Test("seal and open round-trip in every bucket; the size is a bucket and does not depend on the message's length within it")
    func roundTrip() throws {
        for length in [0, 1, 1900, 2678, 2679, 2823, 2824, 3000, 15_000, 60_000, 200_000, 261_000] {
            for checkpoint in [nil, Self.checkpoint] {
                let message = [UInt8](repeating: 0x5A, count: length)
                guard let bucket = SealedEnvelope.bucket(forSessionMessageOf: length, withCheckpoint: checkpoint != nil) else {
                    #expect(length > 260_000)
                    continue
                }
                let sealed = try envelope(message, checkpoint: checkpoint).sealed(to: envelopeKey.publicKey, mailbox: mailbox)
                #expect(sealed.count == bucket, "length \(length) → \(sealed.count)")
                #expect(try open(sealed) == envelope(message, checkpoint: checkpoint))
            }
        }
        // The edges of the smallest bucket: 4096 - 1136 - 136 - 1 = 2823 bytes fit, 2678 with a
        // checkpoint (145 bytes more).
        #expect(SealedEnvelope.overheadByteCount == 1136)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 2823) == 4096)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 2824) == 16384)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 2678, withCheckpoint: true) == 4096)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 2679, withCheckpoint: true) == 16384)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 262_144 - 1136 - 136 - 1) == 262_144)
        #expect(SealedEnvelope.bucket(forSessionMessageOf: 262_144 - 1136 - 136) == nil)
        #expect(throws: SessionError(code: "too-large", message: "")) {
            try envelope([UInt8](repeating: 0, count: 262_144)).sealed(to: envelopeKey.publicKey, mailbox: mailbox)
        }
    }

    @Test("the labels: byte-exact associated data, and a label out of range is refused before sealing")
    func labels() throws {
        let labels = SealedEnvelope.Labels(mailbox: "bob@nairobi", id: id, precedence: 3, ttlClass: 2)
        #expect(labels.associatedData == [1, 11] + Array("bob@nairobi".utf8) + id + [3, 2])
        #expect(SealedEnvelope.Labels(mailbox: "", id: id, precedence: 3, ttlClass: 2).associatedData == nil)
        #expect(SealedEnvelope.Labels(mailbox: String(repeating: "a", count: 256), id: id, precedence: 3, ttlClass: 2).associatedData == nil)
        #expect(SealedEnvelope.Labels(mailbox: "bob@nairobi", id: [1, 2], precedence: 3, ttlClass: 2).associatedData == nil)
        #expect(throws: SessionError.malformed("")) { try envelope([1]).sealed(to: envelopeKey.publicKey, mailbox: "") }
        #expect(throws: SessionError.malformed("")) { try envelope([1], ttl: 0).sealed(to: envelopeKey.publicKey, mailbox: mailbox) }
    }

    @Test("a relay cannot relabel or re-route an envelope: another recipient, id, precedence or TTL class asked does not open it")
    func relabelled() throws {
        let sealed = try envelope([1, 2, 3]).sealed(to: envelopeKey.publicKey, mailbox: mailbox)
        let unsealable = SessionError(code: "unsealable", message: "")
        #expect(throws: unsealable) { try open(sealed, mailbox: "carol@nairobi") }
        #expect(throws: unsealable) { try open(sealed, mailbox: "Bob@nairobi") }
        #expect(throws: unsealable) { try open(sealed, id: [UInt8](repeating: 0xAC, count: 16)) }
        #expect(throws: unsealable) { try open(sealed, precedence: 0) }
        #expect(throws: unsealable) { try open(sealed, precedence: 2) }
        #expect(throws: unsealable) { try open(sealed, ttl: 4) }
        #expect(throws: unsealable) { try open(sealed, ttl: 1, applied: 1) }
        #expect(throws: SessionError.malformed("")) { try open(sealed, mailbox: "") }
    }

    @Test("the TTL class applied: shorter than the sender's is accepted, longer refused")
    func appliedTTL() throws {
        let sealed = try envelope([1, 2, 3], ttl: 3).sealed(to: envelopeKey.publicKey, mailbox: mailbox)
        #expect(try open(sealed, ttl: 3, applied: 1).ttlClass == 3)
        #expect(try open(sealed, ttl: 3, applied: 3).ttlClass == 3)
        #expect(throws: SessionError(code: "ttl-lengthened", message: "")) { try open(sealed, ttl: 3, applied: 4) }
    }

    @Test("the recipient refuses an envelope whose inner id, recipient, precedence or TTL class differs from its labels")
    func outerMustMatchInner() throws {
        // A lying sender seals contents that disagree with the labels it sends them under.
        var otherID = envelope([1, 2, 3]).encoded
        otherID[1] ^= 1
        #expect(throws: SessionError(code: "id-mismatch", message: "")) { try open(sealedContents(otherID)) }
        let sealed = try envelope([1, 2, 3]).sealed(to: envelopeKey.publicKey, mailbox: mailbox)
        #expect(throws: SessionError(code: "not-for-this-device", message: "")) { try open(sealed, recipient: sender.publicKey) }
        #expect(throws: SessionError(code: "label-mismatch", message: "")) { try open(sealedContents(envelope([1], precedence: 2).encoded)) }
        #expect(throws: SessionError(code: "label-mismatch", message: "")) { try open(sealedContents(envelope([1], ttl: 4).encoded)) }
    }

    @Test("a tampered, truncated, lengthened or wrongly keyed envelope does not open, and says so")
    func tamper() throws {
        let sealed = try envelope([1, 2, 3]).sealed(to: envelopeKey.publicKey, mailbox: mailbox)
        // The encapsulated key (its ML-KEM and X25519 parts), the ciphertext, the tag.
        for index in [0, 1087, 1088, 1119, 1120, 2000, sealed.count - 17, sealed.count - 1] {
            var altered = sealed
            altered[index] ^= 1
            #expect(throws: SessionError(code: "unsealable", message: "")) { try open(altered) }
        }
        #expect(throws: SessionError.malformed("")) { try open(Array(sealed.dropLast())) }
        #expect(throws: SessionError.malformed("")) { try open(sealed + [0]) }
        #expect(throws: SessionError.malformed("")) { try open(Array(sealed.prefix(1120))) }
        #expect(throws: SessionError.malformed("")) { try open([]) }
        let otherKey = XWingPrivateKey()
        #expect(throws: SessionError(code: "unsealable", message: "")) { try open(sealed, key: otherKey) }
        let other = try envelope([1, 2, 3]).sealed(to: otherKey.publicKey, mailbox: mailbox)
        #expect(throws: SessionError(code: "unsealable", message: "")) { try open(other) }
        // Two seals of the same envelope differ (a fresh encapsulation each time).
        #expect(try envelope([1, 2, 3]).sealed(to: envelopeKey.publicKey, mailbox: mailbox) != sealed)
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
        for contents in [badPrecedence, badLength, badFlag, badCheckpointVersion, flagWithoutCheckpoint, Array(good.prefix(SealedEnvelope.fixedByteCount - 1))] {
            #expect(throws: SessionError.malformed("")) { try open(sealedContents(contents)) }
        }
        // Versions 1 and 2 (the X25519 sealed box's) are no longer read: the error names both versions.
        for version: UInt8 in [0, 1, 2, 4] {
            var other = good
            other[0] = version
            let error = #expect(throws: SessionError.self) { try open(sealedContents(other)) }
            #expect(error?.code == "envelope-version")
            #expect(error?.message.contains("version \(version)") == true && error?.message.contains("version 3") == true)
        }
        // No padding marker: all zeroes after the contents.
        let block = 4096 - SealedEnvelope.overheadByteCount
        let aad = try #require(envelope([]).labels(mailbox: mailbox).associatedData)
        let unpadded = try HPKEXWing.seal(good + [UInt8](repeating: 0, count: block - good.count), to: envelopeKey.publicKey, info: SealedEnvelope.info, aad: aad)
        #expect(throws: SessionError(code: "unsealable", message: "")) { try open(unpadded.encapsulatedKey + unpadded.ciphertext) }
        // Another HPKE info (another protocol's, or an older envelope's) does not open.
        let otherInfo = try HPKEXWing.seal(Padding.pad(good, toMultipleOf: block), to: envelopeKey.publicKey, info: Array("valise/v1/envelope".utf8), aad: aad)
        #expect(throws: SessionError(code: "unsealable", message: "")) { try open(otherInfo.encapsulatedKey + otherInfo.ciphertext) }
    }

    @Test("envelope keys are signed by the identity key for their own purpose")
    func envelopeKeySignature() throws {
        let signature = SealedEnvelope.signEnvelopeKey(envelopeKey.publicKey, with: recipient)
        #expect(SealedEnvelope.isValidEnvelopeKey(envelopeKey.publicKey, signature: signature, identity: recipient.publicKey))
        #expect(!SealedEnvelope.isValidEnvelopeKey(envelopeKey.publicKey, signature: signature, identity: sender.publicKey))
        #expect(!SealedEnvelope.isValidEnvelopeKey(XWingPrivateKey().publicKey, signature: signature, identity: recipient.publicKey))
        // The retired X25519 purpose's signature over the same bytes is not an X-Wing envelope-key signature.
        let retired = recipient.signature(for: envelopeKey.publicKey.bytes, purpose: SignaturePurpose("envelope-key"))
        #expect(!SealedEnvelope.isValidEnvelopeKey(envelopeKey.publicKey, signature: retired, identity: recipient.publicKey))
        #expect(SealedEnvelope.envelopeKeyPurpose.description == "valise/v1/xwing-envelope-key")
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
