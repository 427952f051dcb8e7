/// A post-quantum key-encapsulation mechanism's fixed sizes, and (internally) the
/// swift-crypto type that computes it.
///
/// The public types are generic over a scheme so that an ML-KEM-768 key, an ML-KEM-1024 key
/// and an X-Wing key are distinct types (a key of one cannot be passed where another is
/// meant) while the length checks, error mapping and secret handling are written once.
/// Only this module can make a `KEMParameters` (its initialiser is internal), so no other
/// module can add a scheme that bypasses swift-crypto.
public struct KEMParameters: Sendable {
    /// The scheme's name, for error messages ("ML-KEM-768").
    public let name: String
    /// Bytes of the private key's seed: ML-KEM's d‖z (64), X-Wing's seed (32).
    public let seedByteCount: Int
    public let publicKeyByteCount: Int
    public let ciphertextByteCount: Int
    /// Every scheme here agrees on a 32-byte shared secret.
    public let sharedSecretByteCount = 32
    let backend: any KEMBackend.Type

    init(name: String, seedByteCount: Int, publicKeyByteCount: Int, ciphertextByteCount: Int, backend: any KEMBackend.Type) {
        self.name = name
        self.seedByteCount = seedByteCount
        self.publicKeyByteCount = publicKeyByteCount
        self.ciphertextByteCount = ciphertextByteCount
        self.backend = backend
    }
}

/// A marker type naming one KEM (`MLKEM768Scheme`, `MLKEM1024Scheme`, `XWingScheme`).
public protocol KEMScheme: Sendable {
    static var parameters: KEMParameters { get }
}

/// ML-KEM-768 (FIPS 203): the Noise handshakes' KEM.
public enum MLKEM768Scheme: KEMScheme {
    public static let parameters = KEMParameters(
        name: "ML-KEM-768", seedByteCount: 64, publicKeyByteCount: 1184, ciphertextByteCount: 1088,
        backend: LibraryKEM<MLKEM768Library>.self
    )
}

/// ML-KEM-1024 (FIPS 203): PQXDH's KEM, for secrets that must last decades.
public enum MLKEM1024Scheme: KEMScheme {
    public static let parameters = KEMParameters(
        name: "ML-KEM-1024", seedByteCount: 64, publicKeyByteCount: 1568, ciphertextByteCount: 1568,
        backend: LibraryKEM<MLKEM1024Library>.self
    )
}

/// X-Wing (ML-KEM-768 combined with X25519, draft-connolly-cfrg-xwing-kem-06): the sealed
/// envelopes' HPKE KEM.
public enum XWingScheme: KEMScheme {
    public static let parameters = KEMParameters(
        name: "X-Wing", seedByteCount: 32, publicKeyByteCount: 1216, ciphertextByteCount: 1120,
        backend: LibraryKEM<XWingLibrary>.self
    )
}

public typealias MLKEM768PublicKey = KEMPublicKey<MLKEM768Scheme>
public typealias MLKEM768PrivateKey = KEMPrivateKey<MLKEM768Scheme>
public typealias MLKEM1024PublicKey = KEMPublicKey<MLKEM1024Scheme>
public typealias MLKEM1024PrivateKey = KEMPrivateKey<MLKEM1024Scheme>
public typealias XWingPublicKey = KEMPublicKey<XWingScheme>
public typealias XWingPrivateKey = KEMPrivateKey<XWingScheme>
