public import ValiseCrypto

/// The sealed envelope (docs/PROTOCOL.md, "Sealed envelopes"): what travels through the
/// relay. Inside, everything the recipient needs and the relay must not see (the sender,
/// its directory head and newest checkpoint, the time, the session message), padded to a
/// size bucket and sealed
/// with HPKE (RFC 9180, Base mode, X-Wing) to the recipient's envelope key, so the relay
/// learns only the recipient, the id, the precedence, the TTL class and the bucket, and
/// cannot change any of them (they are the AEAD's associated data: `Labels`).
public struct SealedEnvelope: Sendable, Equatable {
    /// Version 3 is sealed with HPKE and X-Wing; versions 1 and 2 (the X25519 sealed box)
    /// are refused.
    public static let version: UInt8 = 3
    /// A checkpoint's own encoding (docs/PROTOCOL.md, "Checkpoints": version 1, 145 bytes),
    /// carried as bytes: this module does not read directories; the recipient verifies it.
    public static let checkpointByteCount = 145
    /// Sizes a sealed envelope can have, in bytes (the padded contents are `overheadByteCount`
    /// less). The smallest holds a session's first message (about 1.9 KB with its ML-KEM
    /// ciphertext) with a short text, so a session start looks like any short message; the
    /// largest fits the relay's default limit (256 KiB). docs/PROTOCOL.md gives the reasoning.
    public static let buckets = [4096, 16384, 65536, 262_144]
    /// X-Wing's encapsulated key (1,120) and the AEAD's tag (16).
    public static let overheadByteCount = HPKEXWing.encapsulatedKeyByteCount + HPKEXWing.tagByteCount
    public static let idByteCount = 16
    /// What the X-Wing envelope key is signed for (the X25519 key's `envelope-key` is retired).
    public static let envelopeKeyPurpose = SignaturePurpose("xwing-envelope-key")
    /// HPKE's `info`, bound into the key schedule.
    public static let info = Array("valise/v2/envelope".utf8)

    /// The sender's view of the directory when it sent: sequence and entry hash.
    public struct DirectoryHead: Sendable, Equatable {
        public let sequence: UInt64
        public let hash: [UInt8]

        public init(sequence: UInt64, hash: [UInt8]) {
            self.sequence = sequence
            self.hash = hash
        }
    }

    /// The contents.
    public let id: [UInt8]
    /// The recipient device's identity key.
    public let recipient: SigningPublicKey
    /// 0 ROUTINE … 3 FLASH, as the relay protocol numbers them.
    public let precedence: UInt8
    /// 0 default, 1 hour, 2 day, 3 week, 4 month, as the relay protocol numbers them.
    public let ttlClass: UInt8
    public let sender: SigningPublicKey
    public let senderHead: DirectoryHead
    /// The sender's newest checkpoint, encoded, if it has one: signed by the organisation's
    /// checkpoint key, it lets the recipient prove a fork (never the head alone).
    public let senderCheckpoint: [UInt8]?
    /// The sender's clock, seconds since 1970 (informative: expiry runs on the relay's).
    public let timestamp: UInt64
    public let sessionMessage: [UInt8]

    public init(
        id: [UInt8], recipient: SigningPublicKey, precedence: UInt8, ttlClass: UInt8, sender: SigningPublicKey,
        senderHead: DirectoryHead, senderCheckpoint: [UInt8]? = nil, timestamp: UInt64, sessionMessage: [UInt8]
    ) {
        self.id = id
        self.recipient = recipient
        self.precedence = precedence
        self.ttlClass = ttlClass
        self.sender = sender
        self.senderHead = senderHead
        self.senderCheckpoint = senderCheckpoint
        self.timestamp = timestamp
        self.sessionMessage = sessionMessage
    }

    /// `u8 version (3) ‖ id (16) ‖ recipient (32) ‖ u8 precedence ‖ u8 TTL class ‖ sender (32) ‖
    /// u64 head sequence ‖ head hash (32) ‖ u64 timestamp ‖ u8 has-checkpoint ‖ [checkpoint
    /// (145)] ‖ u32 length ‖ session message`.
    var encoded: [UInt8] { encoded(capacity: contentsByteCount) }

    /// The contents' length before padding.
    var contentsByteCount: Int { Self.contentsByteCount(sessionMessage: sessionMessage.count, withCheckpoint: senderCheckpoint != nil) }

    /// The contents in a buffer of `capacity` bytes (room for the padding, when sealing).
    private func encoded(capacity: Int) -> [UInt8] {
        var writer = ByteWriter(capacity: capacity)
        writer.write(Self.version)
        writer.write(id)
        writer.write(recipient.bytes)
        writer.write(precedence)
        writer.write(ttlClass)
        writer.write(sender.bytes)
        writer.write(senderHead.sequence)
        writer.write(senderHead.hash)
        writer.write(timestamp)
        if let senderCheckpoint {
            writer.write(UInt8(1))
            writer.write(senderCheckpoint)
        } else {
            writer.write(UInt8(0))
        }
        writer.write(UInt32(sessionMessage.count))
        writer.write(sessionMessage)
        return writer.bytes
    }

    /// The contents' bytes besides the session message and the checkpoint (136).
    public static let fixedByteCount = 1 + idByteCount + 32 + 1 + 1 + 32 + 8 + 32 + 8 + 1 + 4

    static func contentsByteCount(sessionMessage count: Int, withCheckpoint: Bool) -> Int {
        fixedByteCount + (withCheckpoint ? checkpointByteCount : 0) + count
    }

    /// The bucket a session message of `count` bytes goes into, with or without a checkpoint
    /// (the contents and at least one byte of padding must fit), or nil if none holds it.
    public static func bucket(forSessionMessageOf count: Int, withCheckpoint: Bool = false) -> Int? {
        let contents = contentsByteCount(sessionMessage: count, withCheckpoint: withCheckpoint)
        return buckets.first { contents + 1 <= $0 - overheadByteCount }
    }

    /// 145 bytes starting with the checkpoint's version, 1: the rest is checked by the
    /// recipient against its directory.
    static func isCheckpointShaped(_ bytes: [UInt8]) -> Bool {
        bytes.count == checkpointByteCount && bytes[0] == 1
    }

    /// Pads and seals the envelope to the recipient's envelope key (whose signature by the
    /// recipient's identity key the caller has checked), for the `mailbox` it is sent to.
    public func sealed(to envelopeKey: XWingPublicKey, mailbox: String) throws(SessionError) -> [UInt8] {
        guard id.count == Self.idByteCount, senderHead.hash.count == 32, precedence <= 3, (1...4).contains(ttlClass),
              senderCheckpoint.map(Self.isCheckpointShaped) ?? true, let aad = labels(mailbox: mailbox).associatedData else {
            throw .malformed("the envelope to seal")
        }
        guard let bucket = Self.bucket(forSessionMessageOf: sessionMessage.count, withCheckpoint: senderCheckpoint != nil) else {
            throw SessionError(code: "too-large", message: "the message is too large for the largest envelope (\(Self.buckets.last!) bytes)")
        }
        var padded = encoded(capacity: bucket - Self.overheadByteCount)
        Padding.pad(&padded, toMultipleOf: bucket - Self.overheadByteCount)
        do {
            let sealed = try HPKEXWing.seal(padded, to: envelopeKey, info: Self.info, aad: aad)
            return sealed.encapsulatedKey + sealed.ciphertext
        } catch {
            throw SessionError(code: "bad-envelope-key", message: "the recipient's envelope key is not usable")
        }
    }

    /// Opens an envelope sealed to `envelopeKey` under the labels the relay delivered it with
    /// (`labels`, with the TTL class the sender asked for) and checks the contents against
    /// them, against the class the relay applied (`appliedTTLClass`: never longer than the
    /// sender's) and against this device (`recipients`: its identity keys, current then
    /// retired). The caller then checks the sender against the session and the directory,
    /// and the head for a fork.
    public static func open(
        _ sealed: [UInt8], with envelopeKey: XWingPrivateKey, labels: Labels, appliedTTLClass: UInt8, recipients: [SigningPublicKey]
    ) throws(SessionError) -> SealedEnvelope {
        guard buckets.contains(sealed.count) else { throw .malformed("the envelope (not a bucket size)") }
        guard let aad = labels.associatedData else { throw .malformed("the envelope's labels") }
        var padded: [UInt8]
        do {
            let split = HPKEXWing.encapsulatedKeyByteCount
            padded = try HPKEXWing.open(
                Array(sealed[split...]), encapsulatedKey: Array(sealed[..<split]), with: envelopeKey, info: info, aad: aad)
            try Padding.unpad(&padded, blockSize: sealed.count - overheadByteCount)
        } catch {
            throw SessionError(
                code: "unsealable",
                message: "the envelope does not open with this device's envelope key under the labels it was delivered with (tampered, relabelled, for another key, or sealed by an older Valise: version 2 used the X25519 sealed box, this device reads only version \(version))")
        }
        // Named apart from other damage, so a sender on an older Valise is told so.
        if let version = padded.first, version != Self.version {
            throw SessionError(
                code: "envelope-version",
                message: "the envelope's contents are version \(version); this device reads only version \(Self.version) (the sender may run another Valise version)")
        }
        let envelope: SealedEnvelope
        do {
            envelope = try ByteReader.read(padded, context: "sealed envelope") { (reader, _) throws(FormatError) in
                _ = try reader.readUInt8()  // the version, checked above
                let id = try reader.readBytes(idByteCount)
                let recipient = try reader.readBytes(32)
                let precedence = try reader.readUInt8()
                let ttlClass = try reader.readUInt8()
                let sender = try reader.readBytes(32)
                let headSequence = try reader.readUInt64()
                let headHash = try reader.readBytes(32)
                let timestamp = try reader.readUInt64()
                let checkpoint: [UInt8]?
                switch try reader.readUInt8() {
                case 0: checkpoint = nil
                case 1:
                    checkpoint = try reader.readBytes(checkpointByteCount)
                    guard isCheckpointShaped(checkpoint!) else { throw .invalid("sealed envelope", "the checkpoint is not version 1") }
                default: throw .invalid("sealed envelope", "has-checkpoint must be 0 or 1")
                }
                let length = try reader.readUInt32()
                let message = try reader.readBytes(Int(length))
                try reader.expectEnd()
                guard precedence <= 3, (1...4).contains(ttlClass) else { throw .invalid("sealed envelope", "unknown precedence or TTL class") }
                do {
                    return SealedEnvelope(
                        id: id, recipient: try SigningPublicKey(bytes: recipient), precedence: precedence, ttlClass: ttlClass,
                        sender: try SigningPublicKey(bytes: sender), senderHead: DirectoryHead(sequence: headSequence, hash: headHash),
                        senderCheckpoint: checkpoint, timestamp: timestamp, sessionMessage: message)
                } catch {
                    throw .invalid("sealed envelope", "a key is not usable")
                }
            }
        } catch {
            throw .malformed("the sealed envelope's contents")
        }
        guard constantTimeEquals(envelope.id, labels.id) else {
            throw SessionError(code: "id-mismatch", message: "the envelope's inner id is not the id the relay delivered it under")
        }
        guard recipients.contains(envelope.recipient) else {
            throw SessionError(code: "not-for-this-device", message: "the envelope is addressed to another device")
        }
        // The labels are authenticated, so these hold for any honest sender; the relay may
        // shorten the TTL it applies (its maximum caps it), never lengthen it.
        guard envelope.precedence == labels.precedence, envelope.ttlClass == labels.ttlClass else {
            throw SessionError(code: "label-mismatch", message: "the envelope's precedence or TTL class differs from its labels")
        }
        guard appliedTTLClass <= envelope.ttlClass else {
            throw SessionError(code: "ttl-lengthened", message: "the relay kept the envelope longer than its sender asked (TTL class \(appliedTTLClass), asked \(envelope.ttlClass))")
        }
        return envelope
    }
}
