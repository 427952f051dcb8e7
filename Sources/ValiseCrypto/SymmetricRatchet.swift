import CSodium

/// The symmetric-key ratchet of Signal's Double Ratchet over HMAC-SHA-256, and the AEAD
/// its message keys drive: the per-message part of a session, made cheap.
///
/// - KDF_CK: next chain key = HMAC-SHA-256(CK, `chainConstant`), message key =
///   HMAC-SHA-256(CK, `messageConstant`);
/// - the message key gives an XChaCha20-Poly1305 key and nonce: HKDF-SHA-256(salt, IKM =
///   message key, info, 56 bytes) → key (32) ‖ nonce (24).
///
/// The results are `SecretBytes` (slots of the shared `SecretArena`), and every intermediate
/// value (HMAC states, HKDF's PRK and output) lives in one arena scratch slot that is wiped
/// when the call returns: no system call and no object per intermediate value, where
/// `HMACSHA256` and `HKDF` make a `SecureScratch` or `SecretBytes` for each.
/// The values are those of `HMACSHA256` and `HKDF<HMACSHA256>` (tests compare them).
public enum SymmetricRatchet {
    public struct Parameters: Sendable {
        public let chainConstant: UInt8
        public let messageConstant: UInt8
        /// HKDF's salt (public).
        public let salt: [UInt8]
        /// HKDF's info.
        public let info: [UInt8]

        public init(chainConstant: UInt8, messageConstant: UInt8, salt: [UInt8], info: [UInt8]) {
            self.chainConstant = chainConstant
            self.messageConstant = messageConstant
            self.salt = salt
            self.info = info
        }
    }

    /// KDF_CK(chain key) → (next chain key, message key).
    public static func step(_ chainKey: SecretBytes, _ parameters: Parameters) -> (chainKey: SecretBytes, messageKey: SecretBytes) {
        chainKey.withUnsafeBytes { key in step(key, parameters) }
    }

    /// Encrypts `plaintext` under the key and nonce `messageKey` gives; the associated data
    /// is `associatedData ‖ header`. Returns ciphertext ‖ tag.
    public static func seal(
        _ plaintext: [UInt8], messageKey: SecretBytes, _ parameters: Parameters, associatedData: [UInt8], header: [UInt8]
    ) -> [UInt8] {
        Sodium.ensureInitialised()
        precondition(plaintext.count <= AEADPrimitive.maximumMessageByteCount, "XChaCha20-Poly1305 message too large")
        return withCipher(messageKey, parameters) { key, nonce in
            withAssociatedData(associatedData, header) { ad in
                withBytes(plaintext) { m, mlen in
                    makeBytes(count: mlen + AEADPrimitive.tagByteCount) { out in
                        let rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
                            out, nil, m, UInt64(mlen), ad.baseAddress!, UInt64(ad.count), nil, nonce, key)
                        precondition(rc == 0, "XChaCha20-Poly1305 encryption failed")
                    }
                }
            }
        }
    }

    /// Verifies and decrypts ciphertext ‖ tag; throws `.authenticationFailed` on any mismatch.
    public static func open(
        _ sealed: [UInt8], messageKey: SecretBytes, _ parameters: Parameters, associatedData: [UInt8], header: [UInt8]
    ) throws(CryptoError) -> [UInt8] {
        try messageKey.withUnsafeBytes { (key) throws(CryptoError) -> [UInt8] in
            try open(sealed, key, parameters, associatedData, header)
        }
    }

    // MARK: Implementation

    /// The scratch slot's layout: HMAC state, PRK, then HKDF's two output blocks.
    private static let stateOffset = 0
    private static let prkOffset = 256
    private static let outputOffset = 288
    private static let scratchByteCount = 352

    private static func step(_ chainKey: UnsafeRawBufferPointer, _ parameters: Parameters) -> (chainKey: SecretBytes, messageKey: SecretBytes) {
        precondition(chainKey.count == HMACSHA256.outputByteCount, "a chain key has 32 bytes")
        Sodium.ensureInitialised()
        let allocation = SecureAllocation.allocate(scratchByteCount)
        defer { allocation.release() }
        let scratch = allocation.pointer
        let state = (scratch + stateOffset).bindMemory(to: crypto_auth_hmacsha256_state.self, capacity: 1)
        let next = SecretBytes(count: 32) { out in
            hmac(state, key: chainKey, byte: parameters.chainConstant, into: out.baseAddress!)
        }
        let message = SecretBytes(count: 32) { out in
            hmac(state, key: chainKey, byte: parameters.messageConstant, into: out.baseAddress!)
        }
        return (next, message)
    }

    private static func open(
        _ sealed: [UInt8], _ messageKey: UnsafeRawBufferPointer, _ parameters: Parameters, _ associatedData: [UInt8], _ header: [UInt8]
    ) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialised()
        guard sealed.count >= AEADPrimitive.tagByteCount else { throw .authenticationFailed }
        guard sealed.count - AEADPrimitive.tagByteCount <= AEADPrimitive.maximumMessageByteCount else {
            throw .tooLarge("XChaCha20-Poly1305 ciphertext", limit: AEADPrimitive.maximumMessageByteCount)
        }
        return try withCipher(messageKey, parameters) { (key, nonce) throws(CryptoError) -> [UInt8] in
            try withAssociatedData(associatedData, header) { (ad) throws(CryptoError) -> [UInt8] in
                try withBytes(sealed) { (c, clen) throws(CryptoError) -> [UInt8] in
                    try makeBytes(count: clen - AEADPrimitive.tagByteCount) { (out) throws(CryptoError) in
                        let rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
                            out, nil, nil, c, UInt64(clen), ad.baseAddress!, UInt64(ad.count), nonce, key)
                        try Sodium.check(rc, .authenticationFailed)
                    }
                }
            }
        }
    }

    private static func withCipher<R, E: Error>(
        _ messageKey: SecretBytes, _ parameters: Parameters,
        _ body: (UnsafePointer<UInt8>, UnsafePointer<UInt8>) throws(E) -> R
    ) throws(E) -> R {
        try messageKey.withUnsafeBytes { (key) throws(E) -> R in try withCipher(key, parameters, body) }
    }

    /// HKDF-SHA-256(salt, IKM = message key, info) → key (32) ‖ nonce (24), in scratch;
    /// `body` gets pointers to both, which do not outlive it.
    private static func withCipher<R, E: Error>(
        _ messageKey: UnsafeRawBufferPointer, _ parameters: Parameters,
        _ body: (UnsafePointer<UInt8>, UnsafePointer<UInt8>) throws(E) -> R
    ) throws(E) -> R {
        precondition(messageKey.count == HMACSHA256.outputByteCount, "a message key has 32 bytes")
        let allocation = SecureAllocation.allocate(scratchByteCount)
        defer { allocation.release() }
        let scratch = allocation.pointer
        let state = (scratch + stateOffset).bindMemory(to: crypto_auth_hmacsha256_state.self, capacity: 1)
        let prk = (scratch + prkOffset).bindMemory(to: UInt8.self, capacity: 32)
        let output = (scratch + outputOffset).bindMemory(to: UInt8.self, capacity: 64)
        // Extract: PRK = HMAC(salt, IKM).
        var rc = withBytes(parameters.salt) { salt, saltCount in crypto_auth_hmacsha256_init(state, salt, saltCount) }
        rc |= crypto_auth_hmacsha256_update(state, messageKey.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(messageKey.count))
        rc |= crypto_auth_hmacsha256_final(state, prk)
        // Expand: T(1) = HMAC(PRK, info ‖ 1), T(2) = HMAC(PRK, T(1) ‖ info ‖ 2).
        for counter in 1...2 {
            rc |= crypto_auth_hmacsha256_init(state, prk, 32)
            if counter > 1 { rc |= crypto_auth_hmacsha256_update(state, output, 32) }
            rc |= withBytes(parameters.info) { info, infoCount in crypto_auth_hmacsha256_update(state, info, UInt64(infoCount)) }
            var byte = UInt8(counter)
            rc |= crypto_auth_hmacsha256_update(state, &byte, 1)
            rc |= crypto_auth_hmacsha256_final(state, output + 32 * (counter - 1))
        }
        precondition(rc == 0, "HKDF-SHA-256 failed")
        return try body(output, output + 32)
    }

    /// HMAC-SHA-256(key, one byte) into `out`, its state in `state`.
    private static func hmac(
        _ state: UnsafeMutablePointer<crypto_auth_hmacsha256_state>, key: UnsafeRawBufferPointer, byte: UInt8, into out: UnsafeMutableRawPointer
    ) {
        var message = byte
        var rc = crypto_auth_hmacsha256_init(state, key.baseAddress!.assumingMemoryBound(to: UInt8.self), key.count)
        rc |= crypto_auth_hmacsha256_update(state, &message, 1)
        rc |= crypto_auth_hmacsha256_final(state, out.assumingMemoryBound(to: UInt8.self))
        precondition(rc == 0, "HMAC-SHA-256 failed")
    }

    /// `first ‖ second` in a temporary buffer (on the stack when small; associated data is
    /// public, so it needs no guarded memory).
    private static func withAssociatedData<R, E: Error>(
        _ first: [UInt8], _ second: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        let count = first.count + second.count
        let result: Result<R, E> = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(count, 1)) { buffer in
            let start = buffer.baseAddress!
            first.withUnsafeBufferPointer { if let source = $0.baseAddress { start.initialize(from: source, count: $0.count) } }
            second.withUnsafeBufferPointer { if let source = $0.baseAddress { (start + first.count).initialize(from: source, count: $0.count) } }
            do throws(E) {
                return .success(try body(UnsafeRawBufferPointer(start: buffer.baseAddress!, count: count)))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
