/// A failed cryptographic operation.
///
/// A struct with static members (swift-nio-ssh's `NIOSSHError` habit): new kinds do not
/// break callers, and each kind has a stable code. Messages name what failed, never a
/// secret or any byte of input.
public struct CryptoError: CodedError {
    /// A stable, machine-readable name for the kind of failure.
    public let code: String
    /// A sentence a person can act on.
    public let message: String

    init(code: String, message: String) {
        self.code = code
        self.message = message
    }

}

extension CryptoError {
    /// An AEAD tag, a MAC or an HPKE seal did not verify: wrong key, or altered or truncated data.
    public static let authenticationFailed = CryptoError(
        code: "authentication-failed",
        message: "authentication failed: wrong key, or the data was altered or truncated"
    )
    /// A signature did not verify for this key, purpose and message.
    public static let invalidSignature = CryptoError(
        code: "invalid-signature", message: "signature does not verify"
    )
    /// A key, nonce or other fixed-size value had the wrong length.
    public static func invalidLength(_ what: String, expected: Int, actual: Int) -> CryptoError {
        CryptoError(
            code: "invalid-length",
            message: "\(what) must be \(expected) bytes, got \(actual)"
        )
    }
    /// A public key was not usable: not on the curve, or of small order.
    public static func invalidPublicKey(_ what: String) -> CryptoError {
        CryptoError(code: "invalid-public-key", message: "\(what) is not a valid public key")
    }
    /// A Diffie-Hellman result was all zeroes: the peer's key has small order.
    public static let weakSharedSecret = CryptoError(
        code: "weak-shared-secret",
        message: "key agreement produced a weak shared secret (the peer's public key has small order)"
    )
    /// Input was larger than the operation allows.
    public static func tooLarge(_ what: String, limit: Int) -> CryptoError {
        CryptoError(code: "too-large", message: "\(what) is larger than \(limit) bytes")
    }
    /// A parameter was outside the range the operation accepts.
    public static func invalidParameter(_ what: String) -> CryptoError {
        CryptoError(code: "invalid-parameter", message: "invalid parameter: \(what)")
    }
    /// The system could not provide memory for a secret (sodium_malloc failed).
    public static let outOfSecureMemory = CryptoError(
        code: "out-of-secure-memory", message: "could not allocate protected memory for a secret"
    )
    /// Argon2id could not run with the requested parameters (usually: not enough memory).
    public static let passwordHashingFailed = CryptoError(
        code: "password-hashing-failed",
        message: "passphrase key derivation failed (not enough memory for its parameters?)"
    )
}
