/// HKDF (RFC 5869) over any HMAC: HKDF-SHA-256 for PQXDH and the Double Ratchet, and
/// HKDF with HMAC-BLAKE2b for Noise. libsodium 1.0.18 has no `crypto_kdf_hkdf_*`.
public enum HKDF<Hash: HMACFunction> {
    /// The longest output RFC 5869 allows: 255 blocks.
    public static var maximumOutputByteCount: Int { 255 * Hash.outputByteCount }

    /// PRK = HMAC(salt, IKM). An empty salt means HashLen zero bytes, which HMAC treats the
    /// same way (keys are zero-padded), as the RFC intends.
    public static func extract(salt: SecretBytes, inputKeyMaterial: SecretBytes) -> SecretBytes {
        Hash.authenticate(key: salt, message: [.secret(inputKeyMaterial)])
    }

    public static func extract(salt: [UInt8], inputKeyMaterial: SecretBytes) -> SecretBytes {
        extract(salt: SecretBytes(copying: salt), inputKeyMaterial: inputKeyMaterial)
    }

    /// OKM = T(1) ‖ T(2) ‖ … truncated to `outputByteCount`, where
    /// T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i).
    public static func expand(
        pseudoRandomKey: SecretBytes, info: [UInt8], outputByteCount: Int
    ) throws(CryptoError) -> SecretBytes {
        guard outputByteCount >= 0, outputByteCount <= maximumOutputByteCount else {
            throw .invalidParameter("HKDF output length must be 0 to \(maximumOutputByteCount) bytes")
        }
        let blockCount = (outputByteCount + Hash.outputByteCount - 1) / Hash.outputByteCount
        var blocks: [SecretBytes] = []
        blocks.reserveCapacity(blockCount)
        for counter in 0..<blockCount {
            var message: [MACInput] = []
            if let previous = blocks.last { message.append(.secret(previous)) }
            message.append(.bytes(info + [UInt8(counter + 1)]))
            blocks.append(Hash.authenticate(key: pseudoRandomKey, message: message))
        }
        return SecretBytes.concatenating(blocks).slice(0..<outputByteCount)
    }

    /// Extract then expand.
    public static func deriveKey(
        inputKeyMaterial: SecretBytes, salt: [UInt8], info: [UInt8], outputByteCount: Int
    ) throws(CryptoError) -> SecretBytes {
        try expand(
            pseudoRandomKey: extract(salt: salt, inputKeyMaterial: inputKeyMaterial),
            info: info, outputByteCount: outputByteCount
        )
    }
}
