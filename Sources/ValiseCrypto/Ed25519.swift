import CSodium

/// An Ed25519 public key: verifies signatures, and converts to the X25519 key that the same
/// identity uses in PQXDH.
public struct SigningPublicKey: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    /// The 32-byte encoding (RFC 8032).
    public let bytes: [UInt8]

    /// Accepts only a canonical encoding of a point in the prime-order subgroup; small-order
    /// and malformed keys are refused here rather than at first use.
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.byteCount else {
            throw .invalidLength("Ed25519 public key", expected: Self.byteCount, actual: bytes.count)
        }
        Sodium.ensureInitialised()
        guard withBytes(bytes, { p, _ in crypto_core_ed25519_is_valid_point(p) }) == 1 else {
            throw .invalidPublicKey("Ed25519 key")
        }
        self.bytes = bytes
    }

    /// Wraps 32 bytes without the (costly) point validation, for a key that is used only to
    /// verify signatures or is compared with keys already validated: libsodium's
    /// verification itself refuses non-canonical and small-order keys, so such a key can
    /// never make a signature valid. (Checking every key of a long log twice would double
    /// its cost.) Anything else must use `init(bytes:)`.
    public init(bytesCheckedBySignature bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.byteCount else {
            throw .invalidLength("Ed25519 public key", expected: Self.byteCount, actual: bytes.count)
        }
        self.bytes = bytes
    }

    /// Whether the key is a canonical point of the prime-order subgroup (what `init(bytes:)` checks).
    public var isValidPoint: Bool {
        Sodium.ensureInitialised()
        return withBytes(bytes) { p, _ in crypto_core_ed25519_is_valid_point(p) } == 1
    }

    /// Verifies `signature` over `message` for `purpose`.
    public func isValidSignature(
        _ signature: Signature, for message: [UInt8], purpose: SignaturePurpose
    ) -> Bool {
        verifyRaw(signature, for: purpose.prefix + message)
    }

    /// Verifies `signature` over `message` for `purpose`, throwing `.invalidSignature`.
    public func verify(
        _ signature: Signature, for message: [UInt8], purpose: SignaturePurpose
    ) throws(CryptoError) {
        guard isValidSignature(signature, for: message, purpose: purpose) else { throw .invalidSignature }
    }

    /// Plain Ed25519 over exactly `message`, without a purpose: only for published test vectors.
    func verifyRaw(_ signature: Signature, for message: [UInt8]) -> Bool {
        withBytes(signature.bytes) { sig, _ in
            withBytes(message) { m, mlen in
                withBytes(bytes) { pk, _ in
                    crypto_sign_verify_detached(sig, m, UInt64(mlen), pk) == 0
                }
            }
        }
    }

    /// The X25519 public key of the same identity (RFC 7748 birational map). Fails for keys
    /// libsodium refuses to convert, such as small-order points.
    public func agreementPublicKey() throws(CryptoError) -> AgreementPublicKey {
        let converted = try makeBytes(count: AgreementPublicKey.byteCount) { (out) throws(CryptoError) in
            let rc = withBytes(bytes) { pk, _ in crypto_sign_ed25519_pk_to_curve25519(out, pk) }
            try Sodium.check(rc, .invalidPublicKey("Ed25519 key (cannot convert to X25519)"))
        }
        return try AgreementPublicKey(bytes: converted)
    }

    public var description: String { "SigningPublicKey(\(Hex.encode(bytes)))" }
}

/// An Ed25519 signature (64 bytes).
public struct Signature: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 64
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.byteCount else {
            throw .invalidLength("Ed25519 signature", expected: Self.byteCount, actual: bytes.count)
        }
        self.bytes = bytes
    }

    public var description: String { "Signature(\(Hex.encode(bytes)))" }
}

/// An Ed25519 private key. It only signs, and always for a stated purpose.
public struct SigningKey: Sendable, CustomStringConvertible {
    public static let seedByteCount = 32
    /// libsodium's 64-byte secret key (seed followed by the public key).
    private let secretKey: SecretBytes
    public let publicKey: SigningPublicKey

    /// A new random key.
    public init() {
        self = try! SigningKey(seed: .random(count: Self.seedByteCount))
    }

    /// The key derived from a 32-byte seed (RFC 8032's "private key").
    public init(seed: SecretBytes) throws(CryptoError) {
        guard seed.count == Self.seedByteCount else {
            throw .invalidLength("Ed25519 seed", expected: Self.seedByteCount, actual: seed.count)
        }
        Sodium.ensureInitialised()
        var publicBytes = [UInt8](repeating: 0, count: SigningPublicKey.byteCount)
        let secret = try SecretBytes(count: Int(crypto_sign_SECRETKEYBYTES)) { (sk) throws(CryptoError) in
            let rc = withBytes(seed) { s, _ in
                publicBytes.withUnsafeMutableBufferPointer { pk in
                    crypto_sign_seed_keypair(pk.baseAddress!, sk.baseAddress!.assumingMemoryBound(to: UInt8.self), s)
                }
            }
            try Sodium.check(rc, .invalidParameter("Ed25519 seed"))
        }
        self.secretKey = secret
        self.publicKey = try SigningPublicKey(bytes: publicBytes)
    }

    /// The 32-byte seed, for storing the key in an encrypted keystore.
    public var seed: SecretBytes { secretKey.slice(0..<Self.seedByteCount) }

    /// Signs `purpose`'s prefix followed by `message`.
    public func signature(for message: [UInt8], purpose: SignaturePurpose) -> Signature {
        signRaw(purpose.prefix + message)
    }

    /// Plain Ed25519 over exactly `message`: only for published test vectors.
    func signRaw(_ message: [UInt8]) -> Signature {
        let bytes = makeBytes(count: Signature.byteCount) { sig in
            let rc = withBytes(message) { m, mlen in
                withBytes(secretKey) { sk, _ in crypto_sign_detached(sig, nil, m, UInt64(mlen), sk) }
            }
            precondition(rc == 0, "crypto_sign_detached failed")
        }
        return try! Signature(bytes: bytes)
    }

    /// The X25519 private key of the same identity, for PQXDH.
    public func agreementPrivateKey() throws(CryptoError) -> AgreementPrivateKey {
        let scalar = try SecretBytes(count: AgreementPrivateKey.byteCount) { (out) throws(CryptoError) in
            let rc = withBytes(secretKey) { sk, _ in
                crypto_sign_ed25519_sk_to_curve25519(out.baseAddress!.assumingMemoryBound(to: UInt8.self), sk)
            }
            try Sodium.check(rc, .invalidParameter("Ed25519 secret key (cannot convert to X25519)"))
        }
        return try AgreementPrivateKey(rawRepresentation: scalar)
    }

    public var description: String { "SigningKey(public: \(Hex.encode(publicKey.bytes)), secret redacted)" }
}
