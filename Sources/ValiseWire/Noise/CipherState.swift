import ValiseCrypto

/// Noise's CipherState (section 5.1) with ChaChaPoly: a key and a 64-bit nonce counter. The
/// nonce is 32 zero bits followed by the counter, little-endian (section 12.3).
public struct CipherState: Sendable {
    /// Noise's maximum message length.
    public static let maximumMessageLength = 65_535
    /// n = 2^64 - 1 is reserved for rekeying; a cipher state never encrypts with it.
    static let reservedNonce = UInt64.max

    private var key: SymmetricKey?
    /// The next nonce.
    public private(set) var nonce: UInt64 = 0

    init() {}

    init(key: SymmetricKey) {
        self.key = key
    }

    public var hasKey: Bool { key != nil }

    mutating func initializeKey(_ key: SymmetricKey?) {
        self.key = key
        nonce = 0
    }

    /// Test hook: sets the counter, to exercise exhaustion without 2^64 messages.
    mutating func setNonce(_ value: UInt64) { nonce = value }

    static func nonceBytes(_ n: UInt64) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        var value = n
        for index in 4..<12 {
            bytes[index] = UInt8(truncatingIfNeeded: value)
            value >>= 8
        }
        return try! ChaChaPoly.Nonce(bytes: bytes)
    }

    public mutating func encrypt(associatedData: [UInt8], plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard let key else { return plaintext }
        guard nonce != Self.reservedNonce else { throw .nonceExhausted }
        guard plaintext.count + ChaChaPoly.tagByteCount <= Self.maximumMessageLength else { throw .tooLarge }
        let sealed = ChaChaPoly.seal(plaintext, using: key, nonce: Self.nonceBytes(nonce), authenticating: associatedData)
        nonce += 1
        return sealed
    }

    public mutating func decrypt(associatedData: [UInt8], ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard let key else { return ciphertext }
        guard nonce != Self.reservedNonce else { throw .nonceExhausted }
        guard ciphertext.count <= Self.maximumMessageLength else { throw .tooLarge }
        do {
            let plaintext = try ChaChaPoly.open(ciphertext, using: key, nonce: Self.nonceBytes(nonce), authenticating: associatedData)
            // The nonce advances only on success: a forged message changes nothing.
            nonce += 1
            return plaintext
        } catch {
            throw .decryptFailed
        }
    }

    /// Rekey (section 11.3): k = the first 32 bytes of ENCRYPT(k, 2^64 - 1, empty, 32 zero
    /// bytes). The nonce is not reset.
    public mutating func rekey() {
        guard let key else { return }
        let sealed = ChaChaPoly.seal(
            [UInt8](repeating: 0, count: 32), using: key, nonce: Self.nonceBytes(Self.reservedNonce), authenticating: [])
        var first = Array(sealed.prefix(32))
        self.key = try! SymmetricKey(SecretBytes(copying: first))
        wipe(&first)
    }
}
