import Crypto
import FoundationEssentials

/// HPKE Base mode with the classical DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
/// ChaCha20-Poly1305, open only. Valise never seals with it: it exists so that RFC 9180's
/// published vectors (there are none for X-Wing) can prove the HPKE path `HPKEXWing` shares
/// (the same KDF, AEAD, single-shot opening and error mapping), and nothing else uses it.
public enum HPKEX25519 {
    public static let kemIdentifier: UInt16 = 0x0020
    public static let encapsulatedKeyByteCount = AgreementPublicKey.byteCount

    static let ciphersuite = HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: HPKEXWing.kdf, aead: HPKEXWing.aead)

    public static func open(
        _ ciphertext: [UInt8], encapsulatedKey: [UInt8], with recipient: AgreementPrivateKey, info: [UInt8], aad: [UInt8]
    ) throws(CryptoError) -> [UInt8] {
        guard encapsulatedKey.count == encapsulatedKeyByteCount else {
            throw .invalidLength("HPKE X25519 encapsulated key", expected: encapsulatedKeyByteCount, actual: encapsulatedKey.count)
        }
        return try HPKEOpen.open(ciphertext, aad: aad, maximum: HPKEXWing.maximumMessageByteCount) {
            let key = try recipient.rawRepresentation.withUnsafeBytes { (scalar) throws in
                try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: scalar)
            }
            return try HPKE.Recipient(privateKey: key, ciphersuite: ciphersuite, info: Data(info), encapsulatedKey: Data(encapsulatedKey))
        }
    }
}
