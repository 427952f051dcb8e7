import Crypto
import FoundationEssentials

/// The calls into swift-crypto (BoringSSL on Linux), through its public API only, behind
/// byte-level functions so that no swift-crypto type appears in ValiseCrypto's public API.
/// Callers check every length first; a failure here is mapped to a `CryptoError` that
/// names the scheme and never a byte of input.
protocol KEMBackend: SendableMetatype {
    static func publicKey(seed: UnsafeRawBufferPointer) throws -> [UInt8]
    /// Parses the key as swift-crypto would before encapsulating to it (FIPS 203's
    /// modulus check for ML-KEM), so that a malformed key is refused when it is read.
    static func validatePublicKey(_ bytes: [UInt8]) throws
    static func encapsulate(to publicKey: [UInt8]) throws -> (sharedSecret: SecretBytes, ciphertext: [UInt8])
    static func decapsulate(_ ciphertext: [UInt8], seed: UnsafeRawBufferPointer) throws -> SecretBytes
}

/// What the three swift-crypto private-key types have in common, with the two calls whose
/// spelling differs between them.
protocol SeededLibraryKey: Crypto.KEMPrivateKey {
    init(seed: UnsafeRawBufferPointer) throws
    static func parsePublicKey(_ bytes: [UInt8]) throws -> PublicKey
    /// Everything the library would refuse at encapsulation, checked when the key is read.
    static func validatePublicKey(_ bytes: [UInt8]) throws
    var publicKeyBytes: Data { get }
}

extension SeededLibraryKey {
    /// ML-KEM's parser runs FIPS 203's modulus check, which is all there is to check.
    static func validatePublicKey(_ bytes: [UInt8]) throws {
        _ = try parsePublicKey(bytes)
    }
}

enum LibraryKEM<Key: SeededLibraryKey>: KEMBackend {
    static func publicKey(seed: UnsafeRawBufferPointer) throws -> [UInt8] {
        try Array(Key(seed: seed).publicKeyBytes)
    }

    static func validatePublicKey(_ bytes: [UInt8]) throws {
        try Key.validatePublicKey(bytes)
    }

    static func encapsulate(to publicKey: [UInt8]) throws -> (sharedSecret: SecretBytes, ciphertext: [UInt8]) {
        let result = try Key.parsePublicKey(publicKey).encapsulate()
        return (secretBytes(result.sharedSecret), Array(result.encapsulated))
    }

    /// The library key is rebuilt from the seed for each call rather than kept: the only
    /// long-lived copy of the secret is then the seed in guarded `SecretBytes`, and the
    /// expanded key lives in BoringSSL's memory (which it wipes on free) for one call.
    static func decapsulate(_ ciphertext: [UInt8], seed: UnsafeRawBufferPointer) throws -> SecretBytes {
        try secretBytes(Key(seed: seed).decapsulate(Data(ciphertext)))
    }

    private static func secretBytes(_ key: Crypto.SymmetricKey) -> SecretBytes {
        key.withUnsafeBytes { SecretBytes(copying: $0) }
    }
}

typealias MLKEM768Library = Crypto.MLKEM768.PrivateKey
typealias MLKEM1024Library = Crypto.MLKEM1024.PrivateKey
typealias XWingLibrary = XWingMLKEM768X25519.PrivateKey

extension Crypto.MLKEM768.PrivateKey: SeededLibraryKey {
    init(seed: UnsafeRawBufferPointer) throws { try self.init(seedRepresentation: seed, publicKey: nil) }
    static func parsePublicKey(_ bytes: [UInt8]) throws -> PublicKey { try PublicKey(rawRepresentation: bytes) }
    var publicKeyBytes: Data { publicKey.rawRepresentation }
}

extension Crypto.MLKEM1024.PrivateKey: SeededLibraryKey {
    init(seed: UnsafeRawBufferPointer) throws { try self.init(seedRepresentation: seed, publicKey: nil) }
    static func parsePublicKey(_ bytes: [UInt8]) throws -> PublicKey { try PublicKey(rawRepresentation: bytes) }
    var publicKeyBytes: Data { publicKey.rawRepresentation }
}

extension XWingMLKEM768X25519.PrivateKey: SeededLibraryKey {
    init(seed: UnsafeRawBufferPointer) throws { try self.init(seedRepresentation: seed, publicKey: nil) }
    static func parsePublicKey(_ bytes: [UInt8]) throws -> PublicKey { try PublicKey(rawRepresentation: bytes) }
    var publicKeyBytes: Data { publicKey.rawRepresentation }

    /// swift-crypto's X-Wing public key checks only its length, and BoringSSL parses it when
    /// encapsulating: a key from the network would be accepted here and fail at the sender.
    /// So both parts (pk_M ‖ pk_X, draft-connolly-cfrg-xwing-kem-06) are checked now:
    /// the ML-KEM-768 part by swift-crypto's ML-KEM parser, and the X25519 part for small
    /// order (BoringSSL's encapsulation refuses the all-zero X25519 result it gives).
    static func validatePublicKey(_ bytes: [UInt8]) throws {
        let split = MLKEM768Scheme.parameters.publicKeyByteCount
        _ = try Crypto.MLKEM768.PublicKey(rawRepresentation: bytes.prefix(split))
        guard try !AgreementPublicKey(bytes: Array(bytes.dropFirst(split))).isSmallOrder else {
            throw CryptoError.invalidPublicKey("X-Wing public key's X25519 part")
        }
        _ = try parsePublicKey(bytes)
    }
}
