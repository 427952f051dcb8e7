public import ValiseCrypto

/// What a relay signs when it answers a status query (docs/PROTOCOL.md, "Message status"):
/// its Noise key, the message id, the state, since when, and the asker's nonce, so that an
/// answer cannot be replayed to another question.
public enum MessageStatusStatement {
    public static let purpose = SignaturePurpose("message-status")
    public static let minimumNonceBytes = 16
    public static let maximumNonceBytes = 64

    /// `relay Noise key (32) ‖ id (16) ‖ u8 state ‖ u64 time ‖ nonce`.
    public static func bytes(relayKey: AgreementPublicKey, id: [UInt8], state: UInt8, time: UInt64, nonce: [UInt8]) -> [UInt8] {
        var writer = ByteWriter(capacity: 32 + id.count + 9 + nonce.count)
        writer.write(relayKey.bytes)
        writer.write(id)
        writer.write(state)
        writer.write(time)
        writer.write(nonce)
        return writer.bytes
    }
}
