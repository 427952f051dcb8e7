import ValiseCrypto

/// Noise's SymmetricState (section 5.2) with BLAKE2b (HASHLEN 64) and HKDF over HMAC-BLAKE2b.
struct SymmetricState: Sendable {
    static let hashLength = 64

    private(set) var cipher = CipherState()
    /// The chaining key: secret.
    private var chainingKey: SecretBytes
    /// The handshake hash: a transcript of everything sent, not secret.
    private(set) var handshakeHash: [UInt8]

    init(protocolName: String) {
        let name = Array(protocolName.utf8)
        handshakeHash = name.count <= Self.hashLength
            ? name + [UInt8](repeating: 0, count: Self.hashLength - name.count)
            : BLAKE2b.hash(name, outputByteCount: Self.hashLength)
        chainingKey = SecretBytes(copying: handshakeHash)
    }

    /// HKDF(ck, input, n), n = 2 or 3 (section 4.3).
    private func hkdf(_ input: SecretBytes, outputs: Int) -> [SecretBytes] {
        let key = HKDF<HMACBLAKE2b>.extract(salt: chainingKey, inputKeyMaterial: input)
        let okm = try! HKDF<HMACBLAKE2b>.expand(pseudoRandomKey: key, info: [], outputByteCount: outputs * Self.hashLength)
        return (0..<outputs).map { okm.slice(($0 * Self.hashLength)..<(($0 + 1) * Self.hashLength)) }
    }

    /// A 64-byte HKDF output truncated to a 32-byte cipher key (section 5.2, HASHLEN 64).
    private static func cipherKey(_ output: SecretBytes) -> SymmetricKey {
        try! SymmetricKey(output.slice(0..<SymmetricKey.byteCount))
    }

    mutating func mixKey(_ input: SecretBytes) {
        let outputs = hkdf(input, outputs: 2)
        chainingKey = outputs[0]
        cipher.initializeKey(Self.cipherKey(outputs[1]))
    }

    mutating func mixHash(_ data: [UInt8]) {
        handshakeHash = BLAKE2b.hash(handshakeHash + data, outputByteCount: Self.hashLength)
    }

    mutating func mixKeyAndHash(_ input: SecretBytes) {
        let outputs = hkdf(input, outputs: 3)
        chainingKey = outputs[0]
        mixHash(outputs[1].withUnsafeBytes { Array($0) })
        cipher.initializeKey(Self.cipherKey(outputs[2]))
    }

    mutating func encryptAndHash(_ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let ciphertext = try cipher.encrypt(associatedData: handshakeHash, plaintext: plaintext)
        mixHash(ciphertext)
        return ciphertext
    }

    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let plaintext = try cipher.decrypt(associatedData: handshakeHash, ciphertext: ciphertext)
        mixHash(ciphertext)
        return plaintext
    }

    /// The two transport cipher states: initiator-to-responder, responder-to-initiator.
    func split() -> (CipherState, CipherState) {
        let outputs = hkdf(SecretBytes(copying: []), outputs: 2)
        return (CipherState(key: Self.cipherKey(outputs[0])), CipherState(key: Self.cipherKey(outputs[1])))
    }
}
