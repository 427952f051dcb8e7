/// A post-quantum KEM public key (ML-KEM-768, ML-KEM-1024 or X-Wing): exactly the scheme's
/// length, and parsed by swift-crypto when made, so a malformed key from the network or the
/// disk is refused here with a `CryptoError` and never reaches an encapsulation.
public struct KEMPublicKey<Scheme: KEMScheme>: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(CryptoError) {
        let parameters = Scheme.parameters
        guard bytes.count == parameters.publicKeyByteCount else {
            throw .invalidLength("\(parameters.name) public key", expected: parameters.publicKeyByteCount, actual: bytes.count)
        }
        do {
            try parameters.backend.validatePublicKey(bytes)
        } catch {
            throw .invalidPublicKey("\(parameters.name) public key")
        }
        self.bytes = bytes
    }

    /// A fresh shared secret and the ciphertext that carries it to this key's owner.
    /// swift-crypto draws the randomness itself: its public API has no deterministic
    /// encapsulation, so known-answer tests cover key generation and decapsulation only.
    public func encapsulate() throws(CryptoError) -> KEMEncapsulation {
        try Self.encapsulate(toKeyBytes: bytes)
    }

    public var description: String {
        "\(Scheme.parameters.name) public key (\(bytes.count) bytes, \(Hex.encode(bytes.prefix(8)))…)"
    }
}

/// The result of an encapsulation: the secret stays with the sender, the ciphertext goes.
public struct KEMEncapsulation: Sendable {
    public let sharedSecret: SecretBytes
    public let ciphertext: [UInt8]
}

/// A post-quantum KEM private key, held as its seed (FIPS 203's d‖z for ML-KEM, X-Wing's
/// 32-byte seed) in guarded `SecretBytes`: the seed is what is stored, and everything else
/// is derived from it by swift-crypto when needed.
public struct KEMPrivateKey<Scheme: KEMScheme>: Sendable, CustomStringConvertible {
    private let seedBytes: SecretBytes
    public let publicKey: KEMPublicKey<Scheme>

    /// A new random key.
    public init() {
        self = try! KEMPrivateKey(seed: .random(count: Scheme.parameters.seedByteCount))
    }

    /// The key with this seed (from a keystore, or a known-answer test).
    public init(seed: SecretBytes) throws(CryptoError) {
        let parameters = Scheme.parameters
        guard seed.count == parameters.seedByteCount else {
            throw .invalidLength("\(parameters.name) private key seed", expected: parameters.seedByteCount, actual: seed.count)
        }
        let publicBytes: [UInt8]
        do {
            publicBytes = try seed.withUnsafeBytes { (raw) throws in try parameters.backend.publicKey(seed: raw) }
        } catch {
            throw .invalidParameter("\(parameters.name) private key seed")
        }
        self.seedBytes = seed
        self.publicKey = try KEMPublicKey(bytes: publicBytes)
    }

    /// The seed, for storing the key in an encrypted keystore.
    public var seed: SecretBytes { seedBytes }

    /// The shared secret in `ciphertext`. The length is checked first; a ciphertext of the
    /// right length that was altered, or made for another key, does NOT throw: ML-KEM's
    /// implicit rejection (and so X-Wing's) returns an unrelated pseudorandom secret, which
    /// the caller's next authenticated step (an AEAD tag, a MAC) then refuses.
    public func decapsulate(_ ciphertext: [UInt8]) throws(CryptoError) -> SecretBytes {
        let parameters = Scheme.parameters
        guard ciphertext.count == parameters.ciphertextByteCount else {
            throw .invalidLength("\(parameters.name) ciphertext", expected: parameters.ciphertextByteCount, actual: ciphertext.count)
        }
        do {
            return try seedBytes.withUnsafeBytes { (raw) throws in try parameters.backend.decapsulate(ciphertext, seed: raw) }
        } catch {
            throw .invalidParameter("\(parameters.name) ciphertext")
        }
    }

    public var description: String {
        "\(Scheme.parameters.name) private key (public: \(Hex.encode(publicKey.bytes.prefix(8)))…, secret redacted)"
    }
}
