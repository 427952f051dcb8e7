extension KEMPublicKey {
    /// Parses `bytes` as this scheme's public key and encapsulates to it in one step, for a
    /// key used once, as soon as it arrives (a Noise handshake's `e1`): `init(bytes:)` then
    /// `encapsulate()` would parse it twice, and for ML-KEM the parse (FIPS 203's modulus
    /// check and the matrix expansion) is a large part of an encapsulation's cost. A key that
    /// `init(bytes:)` would refuse is refused here with the same errors.
    public static func encapsulate(toKeyBytes bytes: [UInt8]) throws(CryptoError) -> KEMEncapsulation {
        let parameters = Scheme.parameters
        guard bytes.count == parameters.publicKeyByteCount else {
            throw .invalidLength("\(parameters.name) public key", expected: parameters.publicKeyByteCount, actual: bytes.count)
        }
        do {
            let (secret, ciphertext) = try parameters.backend.encapsulate(to: bytes)
            return KEMEncapsulation(sharedSecret: secret, ciphertext: ciphertext)
        } catch {
            throw .invalidPublicKey("\(parameters.name) public key")
        }
    }
}
