public import ValiseCrypto

/// What a relay signs when it answers a status query (docs/PROTOCOL.md, "Store and
/// forward", StatusQuery): its Noise key, the message id, the state with its reason, since
/// when, the relay that took custody, and the asker's nonce, so that an answer cannot be
/// replayed to another question, nor read as another state.
public enum MessageStatusStatement {
    public static let purpose = SignaturePurpose("message-status")
    /// The first byte of the signed bytes. Version 1 (no version byte, no reason, no relay)
    /// began with the relay's key; no relay signs it any more.
    public static let version: UInt8 = 2
    public static let minimumNonceBytes = 16
    public static let maximumNonceBytes = 64
    /// `forwarded_to` is a relay's name in the directory: a label of at most 64 bytes.
    public static let maximumForwardedToBytes = 64

    /// `u8 2 ‖ relay Noise key (32) ‖ id (16) ‖ u8 state ‖ u8 reason ‖ u64 time ‖ u8 n ‖
    /// n bytes forwarded_to ‖ nonce`. `forwardedTo` must be at most 64 bytes (checked by
    /// `isConsistent`; longer is cut here so the length byte never wraps).
    public static func bytes(
        relayKey: AgreementPublicKey, id: [UInt8], state: UInt8, reason: UInt8, time: UInt64, forwardedTo: String, nonce: [UInt8]
    ) -> [UInt8] {
        let relay = Array(forwardedTo.utf8.prefix(maximumForwardedToBytes))
        var writer = ByteWriter(capacity: 1 + 32 + id.count + 11 + relay.count + nonce.count)
        writer.write(version)
        writer.write(relayKey.bytes)
        writer.write(id)
        writer.write(state)
        writer.write(reason)
        writer.write(time)
        writer.write(UInt8(relay.count))
        writer.write(relay)
        writer.write(nonce)
        return writer.bytes
    }

    /// The bytes signed for one answer, as the message carries it.
    public static func bytes(relayKey: AgreementPublicKey, status: WireMessageStatus, nonce: [UInt8]) -> [UInt8] {
        bytes(
            relayKey: relayKey, id: Array(status.id), state: UInt8(clamping: status.state.rawValue),
            reason: UInt8(clamping: status.reason.rawValue), time: status.time, forwardedTo: status.forwardedTo, nonce: nonce)
    }

    /// A reason only with UNDELIVERABLE (which needs one), a relay only with FORWARDED
    /// (which needs one, of at most 64 bytes): a signed statement that breaks these says
    /// nothing a client may act on.
    public static func isConsistent(_ status: WireMessageStatus) -> Bool {
        let relayBytes = status.forwardedTo.utf8.count
        switch status.state {
        case .undeliverable: return status.reason != .unspecified && relayBytes == 0
        case .forwarded: return status.reason == .unspecified && relayBytes > 0 && relayBytes <= maximumForwardedToBytes
        default: return status.reason == .unspecified && relayBytes == 0
        }
    }
}
