public import ValiseCrypto

/// The sealed envelope (docs/PROTOCOL.md, "Sealed envelopes"): what travels through the
/// relay. Inside, everything the recipient needs and the relay must not see (the sender,
/// its directory head and newest checkpoint, the time, the session message), padded to a
/// size bucket and sealed
/// with an ephemeral key to the recipient's envelope key, so the relay learns only the
/// recipient, the id, the precedence, the TTL class and the bucket.
public struct SealedEnvelope: Sendable, Equatable {
    /// Version 2 carries the sender's newest checkpoint; version 1 is refused.
    public static let version: UInt8 = 2
    /// A checkpoint's own encoding (docs/PROTOCOL.md, "Checkpoints": version 1, 145 bytes),
    /// carried as bytes: this module does not read directories; the recipient verifies it.
    public static let checkpointByteCount = 145
    /// Sizes a sealed envelope can have, in bytes (the padded contents are 48 bytes less:
    /// a sealed box's ephemeral key and tag). The largest fits the relay's default limit.
    public static let buckets = [1024, 4096, 16384, 65536, 262_144]
    public static let idByteCount = 16
    /// What the envelope key signs for (`valise/v1/envelope-key`, 0x00, the 32-byte key).
    public static let envelopeKeyPurpose = SignaturePurpose("envelope-key")

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

    /// `u8 version (2) ‖ id (16) ‖ recipient (32) ‖ u8 precedence ‖ u8 TTL class ‖ sender (32) ‖
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
        return buckets.first { contents + 1 <= $0 - SealedBox.overheadByteCount }
    }

    /// 145 bytes starting with the checkpoint's version, 1: the rest is checked by the
    /// recipient against its directory.
    static func isCheckpointShaped(_ bytes: [UInt8]) -> Bool {
        bytes.count == checkpointByteCount && bytes[0] == 1
    }

    /// The identity key's signature over an envelope key.
    public static func signEnvelopeKey(_ key: AgreementPublicKey, with identity: SigningKey) -> Signature {
        identity.signature(for: key.bytes, purpose: envelopeKeyPurpose)
    }

    public static func isValidEnvelopeKey(_ key: AgreementPublicKey, signature: Signature, identity: SigningPublicKey) -> Bool {
        identity.isValidSignature(signature, for: key.bytes, purpose: envelopeKeyPurpose)
    }

    /// Pads and seals the envelope to the recipient's envelope key (whose signature by the
    /// recipient's identity key the caller has checked).
    public func sealed(to envelopeKey: AgreementPublicKey) throws(SessionError) -> [UInt8] {
        guard id.count == Self.idByteCount, senderHead.hash.count == 32, precedence <= 3, (1...4).contains(ttlClass),
              senderCheckpoint.map(Self.isCheckpointShaped) ?? true else {
            throw .malformed("the envelope to seal")
        }
        guard let bucket = Self.bucket(forSessionMessageOf: sessionMessage.count, withCheckpoint: senderCheckpoint != nil) else {
            throw SessionError(code: "too-large", message: "the message is too large for the largest envelope (\(Self.buckets.last!) bytes)")
        }
        var padded = encoded(capacity: bucket - SealedBox.overheadByteCount)
        Padding.pad(&padded, toMultipleOf: bucket - SealedBox.overheadByteCount)
        do {
            return try SealedBox.seal(padded, to: envelopeKey)
        } catch {
            throw SessionError.weakKey
        }
    }

    /// Opens an envelope sealed to `envelopeKey` and checks it against what the relay said
    /// (`id`, precedence, TTL class) and against this device (`recipient`). The caller then
    /// checks the sender against the session and the directory, and the head for a fork.
    public static func open(
        _ sealed: [UInt8], with envelopeKey: AgreementPrivateKey, expectedID: [UInt8], recipient: SigningPublicKey,
        precedence: UInt8, ttlClass: UInt8
    ) throws(SessionError) -> SealedEnvelope {
        guard buckets.contains(sealed.count) else { throw .malformed("the envelope (not a bucket size)") }
        var padded: [UInt8]
        do {
            padded = try SealedBox.open(sealed, with: envelopeKey)
            try Padding.unpad(&padded, blockSize: sealed.count - SealedBox.overheadByteCount)
        } catch {
            throw SessionError(code: "unsealable", message: "the envelope does not open with this device's envelope key (tampered, or for another key)")
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
        guard constantTimeEquals(envelope.id, expectedID) else {
            throw SessionError(code: "id-mismatch", message: "the envelope's inner id is not the id the relay delivered it under")
        }
        guard envelope.recipient == recipient else {
            throw SessionError(code: "not-for-this-device", message: "the envelope is addressed to another device")
        }
        // The relay may shorten a TTL (its maximum caps it), never lengthen it.
        guard envelope.precedence == precedence, ttlClass <= envelope.ttlClass else {
            throw SessionError(code: "label-mismatch", message: "the relay's precedence or TTL class differs from the sender's")
        }
        return envelope
    }
}
