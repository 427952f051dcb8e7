public import ValiseCrypto

/// A session's state as the client stores it (encrypted at rest by the local store), in
/// guarded memory: docs/PROTOCOL.md, "Stored session".
///
///     u8 version (2) ‖ peer identity 32 ‖ u16 initial header length ‖ initial header ‖
///     u8 pending (0 or 1) ‖ sending ratchet private key 32 ‖ u8 has receiving key ‖ [32] ‖
///     root key 32 ‖ u8 has sending chain ‖ [32] ‖ u8 has receiving chain ‖ [32] ‖
///     u32 sent ‖ u32 received ‖ u32 previous chain length ‖ u16 AD length ‖ AD ‖
///     u32 skipped count ‖ (ratchet key 32 ‖ u32 number ‖ message key 32)…, oldest first
extension Session {
    /// 2 since the PQXDH header (up to 1729 bytes) needs a u16 length; version 1 (X3DH,
    /// u8 length) is refused.
    public static let storageVersion: UInt8 = 2

    public var stored: SecretBytes {
        let r = ratchet
        let slots = r.skippedOrder.filter { r.skipped[$0] != nil }
        let header = initialHeader.encoded
        let count = 1 + 32 + 2 + header.count + 1 + 32 + 1 + (r.receivingRatchetKey == nil ? 0 : 32) + 32
            + 1 + (r.sendingChain == nil ? 0 : 32) + 1 + (r.receivingChain == nil ? 0 : 32)
            + 12 + 2 + r.associatedData.count + 4 + slots.count * 68
        return SecretBytes(count: count) { buffer in
            var writer = SecretWriter(buffer)
            writer.write(Self.storageVersion)
            writer.write(peerIdentity.bytes)
            writer.write(UInt16(header.count))
            writer.write(header)
            writer.write(UInt8(pendingInitialHeader == nil ? 0 : 1))
            writer.write(r.sendingRatchetKey.rawRepresentation)
            Self.writeOptional(r.receivingRatchetKey?.bytes, to: &writer)
            writer.write(r.rootKey)
            Self.writeOptional(r.sendingChain, to: &writer)
            Self.writeOptional(r.receivingChain, to: &writer)
            writer.write(r.sent)
            writer.write(r.received)
            writer.write(r.previousSendingChainLength)
            writer.write(UInt16(r.associatedData.count))
            writer.write(r.associatedData)
            writer.write(UInt32(slots.count))
            for slot in slots {
                writer.write(slot.ratchetKey.bytes)
                writer.write(slot.number)
                writer.write(r.skipped[slot]!)
            }
            writer.finish()
        }
    }

    private static func writeOptional(_ bytes: [UInt8]?, to writer: inout SecretWriter) {
        if let bytes {
            writer.write(UInt8(1))
            writer.write(bytes)
        } else {
            writer.write(UInt8(0))
        }
    }

    private static func writeOptional(_ secret: SecretBytes?, to writer: inout SecretWriter) {
        if let secret {
            writer.write(UInt8(1))
            writer.write(secret)
        } else {
            writer.write(UInt8(0))
        }
    }

    /// Reads a stored session. The local store's AEAD already proved who wrote it, so a
    /// failure means a newer format or damage; either way the session is not used.
    public init(stored: SecretBytes) throws(SessionError) {
        let result = stored.withUnsafeBytes { raw -> Result<Session, SessionError> in
            do throws(FormatError) {
                var reader = ByteReader(raw, context: "stored session")
                let version = try reader.readUInt8()
                guard version == Self.storageVersion else { throw .unsupportedVersion("stored session", Int(version)) }
                let peer = try reader.readBytes(32)
                let headerLength = Int(try reader.readUInt16())
                guard headerLength <= PQXDH.InitialHeader.maximumByteCount else { throw .invalid("stored session", "the initial header is too long") }
                let headerBytes = try reader.readBytes(headerLength)
                let pending = try reader.readUInt8()
                let sendingKey = try reader.readSecret(32)
                let receivingKey = try reader.readUInt8() == 1 ? try reader.readBytes(32) : nil
                let root = try reader.readSecret(32)
                let sendingChain = try reader.readUInt8() == 1 ? try reader.readSecret(32) : nil
                let receivingChain = try reader.readUInt8() == 1 ? try reader.readSecret(32) : nil
                let sent = try reader.readUInt32()
                let received = try reader.readUInt32()
                let previous = try reader.readUInt32()
                let ad = try reader.readBytes(Int(try reader.readUInt16()))
                let skippedCount = Int(try reader.readUInt32())
                guard skippedCount <= DoubleRatchet.maximumStoredSkipped else { throw .invalid("stored session", "too many skipped keys") }
                var skipped: [DoubleRatchet.SkippedKey: SecretBytes] = [:]
                var order: [DoubleRatchet.SkippedKey] = []
                for _ in 0..<skippedCount {
                    let key = try reader.readBytes(32)
                    let number = try reader.readUInt32()
                    let messageKey = try reader.readSecret(32)
                    guard let publicKey = try? AgreementPublicKey(bytes: key) else { throw .invalid("stored session", "a skipped key") }
                    let slot = DoubleRatchet.SkippedKey(ratchetKey: publicKey, number: number)
                    if skipped.updateValue(messageKey, forKey: slot) == nil { order.append(slot) }
                }
                try reader.expectEnd()
                guard let peerIdentity = try? SigningPublicKey(bytes: peer),
                      let header = try? PQXDH.InitialHeader(decoding: headerBytes),
                      let sendingRatchetKey = try? AgreementPrivateKey(rawRepresentation: sendingKey),
                      pending <= 1
                else { throw .invalid("stored session", "a key or the initial header is not valid") }
                var receiving: AgreementPublicKey?
                if let receivingKey {
                    guard let key = try? AgreementPublicKey(bytes: receivingKey) else { throw .invalid("stored session", "the receiving key") }
                    receiving = key
                }
                let ratchet = DoubleRatchet(
                    associatedData: ad, sendingRatchetKey: sendingRatchetKey, receivingRatchetKey: receiving, rootKey: root,
                    sendingChain: sendingChain, receivingChain: receivingChain, sent: sent, received: received,
                    previousSendingChainLength: previous, skipped: skipped, skippedOrder: order)
                return .success(Session(peerIdentity: peerIdentity, ratchet: ratchet, pendingInitialHeader: pending == 1 ? header : nil, initialHeader: header))
            } catch {
                return .failure(SessionError(code: "bad-stored-session", message: "a stored session cannot be read: \(error.message)"))
            }
        }
        self = try result.get()
    }
}

extension DoubleRatchet {
    init(
        associatedData: [UInt8], sendingRatchetKey: AgreementPrivateKey, receivingRatchetKey: AgreementPublicKey?, rootKey: SecretBytes,
        sendingChain: SecretBytes?, receivingChain: SecretBytes?, sent: UInt32, received: UInt32, previousSendingChainLength: UInt32,
        skipped: [SkippedKey: SecretBytes], skippedOrder: [SkippedKey]
    ) {
        self.associatedData = associatedData
        self.sendingRatchetKey = sendingRatchetKey
        self.receivingRatchetKey = receivingRatchetKey
        self.rootKey = rootKey
        self.sendingChain = sendingChain
        self.receivingChain = receivingChain
        self.sent = sent
        self.received = received
        self.previousSendingChainLength = previousSendingChainLength
        self.skipped = skipped
        self.skippedOrder = skippedOrder
    }
}
