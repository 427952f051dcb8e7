public import ValiseCrypto

/// A Noise handshake or transport failure. The peer learns nothing from it: a connection
/// that fails is closed.
public struct NoiseError: CodedError {
    public let code: String
    public let message: String

    init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// A message did not authenticate (wrong keys, wrong prologue, tampering).
    public static let decryptFailed = NoiseError(code: "decrypt-failed", message: "a Noise message did not authenticate")
    /// A handshake message was shorter or longer than its pattern allows.
    public static let badLength = NoiseError(code: "bad-length", message: "a Noise handshake message has the wrong length")
    /// A message arrived when the other side should be writing, or after the handshake.
    public static let outOfOrder = NoiseError(code: "out-of-order", message: "a Noise message arrived out of order")
    /// The nonce reached 2^64 - 1, which Noise reserves: the session must end (or rekey earlier).
    public static let nonceExhausted = NoiseError(code: "nonce-exhausted", message: "the Noise nonce is exhausted")
    /// A Diffie-Hellman result was all zeroes (a small-order key from the peer).
    public static let weakKey = NoiseError(code: "weak-key", message: "the peer sent a weak (small-order) key")
    /// HFS: the peer's ML-KEM-768 public key was refused by the KEM library (malformed), or
    /// the KEM failed on a ciphertext of the right length.
    public static let invalidKEMKey = NoiseError(code: "invalid-kem", message: "the peer's ML-KEM key or ciphertext was refused")
    /// A message is larger than Noise's 65535-byte limit.
    public static let tooLarge = NoiseError(code: "too-large", message: "a Noise message is larger than 65535 bytes")
    /// The protocol name is not one this implementation supports.
    public static func unsupported(_ name: String) -> NoiseError {
        NoiseError(code: "unsupported", message: "unsupported Noise protocol \(name)")
    }
    /// A key this pattern needs was not given (a static key, the responder's static key for XK).
    public static func missingKey(_ which: String) -> NoiseError {
        NoiseError(code: "missing-key", message: "the Noise handshake needs \(which)")
    }
}
