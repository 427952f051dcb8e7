import CSodium

/// An X25519 public key, for Diffie-Hellman (the Noise handshake, PQXDH, the Double Ratchet; X-Wing holds one inside for sealed envelopes).
public struct AgreementPublicKey: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    public let bytes: [UInt8]

    /// Any 32 bytes are an X25519 public key (RFC 7748); small-order keys are caught when a
    /// key agreement with them yields the all-zero secret.
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.byteCount else {
            throw .invalidLength("X25519 public key", expected: Self.byteCount, actual: bytes.count)
        }
        self.bytes = bytes
    }

    public var description: String { "AgreementPublicKey(\(Hex.encode(bytes)))" }

    /// Whether the key is in the small-order subgroup (every agreement with it gives the
    /// all-zero secret, since X25519 scalars are multiples of 8): useless, and a sign of
    /// malice when someone publishes it.
    public var isSmallOrder: Bool {
        (try? AgreementPrivateKey().sharedSecret(with: self)) == nil
    }
}

/// An X25519 private key. It only agrees on shared secrets; it cannot sign or encrypt.
public struct AgreementPrivateKey: Sendable, CustomStringConvertible {
    public static let byteCount = 32
    private let scalar: SecretBytes
    public let publicKey: AgreementPublicKey

    /// A new random key.
    public init() {
        self = try! AgreementPrivateKey(rawRepresentation: .random(count: Self.byteCount))
    }

    /// The key with this 32-byte scalar (clamped by X25519 itself, as RFC 7748 says).
    public init(rawRepresentation scalar: SecretBytes) throws(CryptoError) {
        guard scalar.count == Self.byteCount else {
            throw .invalidLength("X25519 private key", expected: Self.byteCount, actual: scalar.count)
        }
        Sodium.ensureInitialised()
        let publicBytes = try makeBytes(count: AgreementPublicKey.byteCount) { (out) throws(CryptoError) in
            let rc = withBytes(scalar) { n, _ in crypto_scalarmult_base(out, n) }
            try Sodium.check(rc, .invalidParameter("X25519 private key"))
        }
        self.scalar = scalar
        self.publicKey = try AgreementPublicKey(bytes: publicBytes)
    }

    /// The 32-byte scalar, for storing the key in an encrypted keystore.
    public var rawRepresentation: SecretBytes { scalar }

    /// X25519(self, peer). Throws `.weakSharedSecret` when the result is all zeroes, which
    /// happens exactly when the peer's key has small order (libsodium checks this).
    public func sharedSecret(with peer: AgreementPublicKey) throws(CryptoError) -> SecretBytes {
        try SecretBytes(count: 32) { (out) throws(CryptoError) in
            let rc = withBytes(scalar) { n, _ in
                withBytes(peer.bytes) { p, _ in
                    crypto_scalarmult(out.baseAddress!.assumingMemoryBound(to: UInt8.self), n, p)
                }
            }
            try Sodium.check(rc, .weakSharedSecret)
        }
    }

    public var description: String {
        "AgreementPrivateKey(public: \(Hex.encode(publicKey.bytes)), secret redacted)"
    }
}
