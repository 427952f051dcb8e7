public import ValiseCrypto

/// Why a session could not be set up or a message could not be read. Messages name what
/// failed, never a key or a plaintext.
public struct SessionError: CodedError {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// The bundle's signed prekey is not signed by the identity key it came with.
    public static let badPrekeySignature = SessionError(
        code: "bad-prekey-signature", message: "the signed prekey is not signed by the member's identity key")
    /// The bundle's KEM prekey is not signed by the identity key it came with (for its kind).
    public static let badKEMPrekeySignature = SessionError(
        code: "bad-kem-prekey-signature", message: "the KEM prekey is not signed by the member's identity key")
    /// A key agreement gave the all-zero secret: a small-order (malicious) public key.
    public static let weakKey = SessionError(code: "weak-key", message: "a public key in the message is not usable (small order)")
    /// The initial message names a signed, one-time or KEM prekey this device does not hold.
    public static let unknownPrekey = SessionError(
        code: "unknown-prekey", message: "the message was made for a prekey this device does not hold (used, rotated away or never ours)")
    /// Authentication failed: tampered, for another session, or garbage.
    public static let undecryptable = SessionError(
        code: "undecryptable", message: "the message does not decrypt in this session (tampered, or not for it)")
    /// A message number this session has already decrypted.
    public static let duplicate = SessionError(code: "duplicate", message: "the message was already received (a replay)")
    /// The header asks to skip more message keys than the session allows.
    public static func tooManySkipped(_ count: UInt64, limit: Int) -> SessionError {
        SessionError(code: "too-many-skipped", message: "the message is \(count) messages ahead of this session, more than the \(limit) it will skip")
    }
    /// The bytes do not parse.
    public static func malformed(_ what: String) -> SessionError {
        SessionError(code: "malformed", message: "\(what) is malformed")
    }
}
