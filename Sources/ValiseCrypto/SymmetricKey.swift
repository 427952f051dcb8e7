/// A 256-bit symmetric key for an AEAD. It is not a signing key nor a Diffie-Hellman key,
/// and the type system keeps it that way.
public struct SymmetricKey: Sendable, CustomStringConvertible {
    public static let byteCount = 32
    let secret: SecretBytes

    /// A new random key.
    public init() {
        self.secret = .random(count: Self.byteCount)
    }

    /// Wraps 32 secret bytes (for example the output of a KDF).
    public init(_ secret: SecretBytes) throws(CryptoError) {
        guard secret.count == Self.byteCount else {
            throw .invalidLength("symmetric key", expected: Self.byteCount, actual: secret.count)
        }
        self.secret = secret
    }

    /// The key's bytes, for deriving from it or storing it encrypted.
    public var rawRepresentation: SecretBytes { secret }

    /// Constant-time comparison.
    public func constantTimeEquals(_ other: SymmetricKey) -> Bool { secret.constantTimeEquals(other.secret) }

    public var description: String { "SymmetricKey(redacted)" }
}
