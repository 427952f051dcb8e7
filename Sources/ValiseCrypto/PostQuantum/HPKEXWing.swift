import Crypto
import FoundationEssentials

/// HPKE (RFC 9180) in Base mode with the X-Wing KEM (0x647a), HKDF-SHA256 (0x0001) and
/// ChaCha20-Poly1305 (0x0003), through swift-crypto's `HPKE`: the sealed envelopes' public-key
/// encryption. Single-shot: one message per encapsulation (sequence number 0), so there is
/// no context to keep, reuse or get out of step.
public enum HPKEXWing {
    public static let kemIdentifier: UInt16 = 0x647a
    public static let kdfIdentifier: UInt16 = 0x0001
    public static let aeadIdentifier: UInt16 = 0x0003
    /// X-Wing's ciphertext, which HPKE calls the encapsulated key.
    public static let encapsulatedKeyByteCount = XWingScheme.parameters.ciphertextByteCount
    /// Bytes the AEAD adds to the plaintext (the Poly1305 tag).
    public static let tagByteCount = 16
    public static let maximumMessageByteCount = 1 << 30

    /// The KDF and AEAD, in one place so that `HPKEX25519` (RFC 9180's vectors) tests them.
    static let kdf = HPKE.KDF.HKDF_SHA256
    static let aead = HPKE.AEAD.chaChaPoly
    static let ciphersuite = HPKE.Ciphersuite(kem: .XWingMLKEM768X25519, kdf: kdf, aead: aead)

    /// Encrypts `plaintext` to `recipient`, binding `info` (into the key schedule) and `aad`
    /// (into the AEAD). Both must be given again, identical, to open.
    public static func seal(
        _ plaintext: [UInt8], to recipient: XWingPublicKey, info: [UInt8], aad: [UInt8]
    ) throws(CryptoError) -> HPKESealed {
        guard plaintext.count <= maximumMessageByteCount else {
            throw .tooLarge("HPKE plaintext", limit: maximumMessageByteCount)
        }
        do {
            let key = try XWingMLKEM768X25519.PublicKey(rawRepresentation: recipient.bytes)
            var sender = try HPKE.Sender(recipientKey: key, ciphersuite: ciphersuite, info: Data(info))
            let ciphertext = try sender.seal(plaintext, authenticating: aad)
            return HPKESealed(encapsulatedKey: Array(sender.encapsulatedKey), ciphertext: Array(ciphertext))
        } catch {
            throw .invalidPublicKey("X-Wing public key")
        }
    }

    /// Decrypts what `seal` made for `recipient`. Throws `.invalidLength` for an encapsulated
    /// key of the wrong size, and `.authenticationFailed` when anything else is wrong: another
    /// key, another `info` or `aad`, or an altered or truncated ciphertext or encapsulated key.
    public static func open(
        _ ciphertext: [UInt8], encapsulatedKey: [UInt8], with recipient: XWingPrivateKey, info: [UInt8], aad: [UInt8]
    ) throws(CryptoError) -> [UInt8] {
        guard encapsulatedKey.count == encapsulatedKeyByteCount else {
            throw .invalidLength("HPKE X-Wing encapsulated key", expected: encapsulatedKeyByteCount, actual: encapsulatedKey.count)
        }
        return try HPKEOpen.open(ciphertext, aad: aad, maximum: maximumMessageByteCount) {
            let key = try recipient.seed.withUnsafeBytes { (seed) throws in try XWingMLKEM768X25519.PrivateKey(seed: seed) }
            return try HPKE.Recipient(privateKey: key, ciphersuite: ciphersuite, info: Data(info), encapsulatedKey: Data(encapsulatedKey))
        }
    }
}

/// What HPKE's sender transmits: the KEM's encapsulated key and the AEAD ciphertext.
public struct HPKESealed: Sendable, Hashable {
    public let encapsulatedKey: [UInt8]
    public let ciphertext: [UInt8]
}

/// The opening steps every suite shares: bound the input, set the recipient's context up,
/// open sequence number 0, and refuse every failure as one `.authenticationFailed` (an
/// attacker learns nothing from which step failed).
enum HPKEOpen {
    static func open(
        _ ciphertext: [UInt8], aad: [UInt8], maximum: Int, recipient makeRecipient: () throws -> HPKE.Recipient
    ) throws(CryptoError) -> [UInt8] {
        guard ciphertext.count >= HPKEXWing.tagByteCount else { throw .authenticationFailed }
        guard ciphertext.count - HPKEXWing.tagByteCount <= maximum else { throw .tooLarge("HPKE ciphertext", limit: maximum) }
        do {
            var recipient = try makeRecipient()
            return try Array(recipient.open(ciphertext, authenticating: aad))
        } catch {
            throw .authenticationFailed
        }
    }
}
