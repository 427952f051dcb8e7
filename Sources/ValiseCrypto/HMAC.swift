import CSodium

/// One piece of an HMAC's message: public bytes, or a secret that stays in guarded memory.
public enum MACInput {
    case bytes([UInt8])
    case secret(SecretBytes)
}

/// An HMAC (RFC 2104) that HKDF can be built on.
public protocol HMACFunction {
    /// The output length, HashLen in RFC 5869.
    static var outputByteCount: Int { get }
    /// HMAC(key, the concatenation of `message`), into guarded memory.
    static func authenticate(key: SecretBytes, message: [MACInput]) -> SecretBytes
}

extension HMACFunction {
    /// HMAC over public bytes, returned as a public tag.
    public static func tag(for message: [UInt8], key: SecretBytes) -> [UInt8] {
        authenticate(key: key, message: [.bytes(message)]).withUnsafeBytes { Array($0) }
    }

    /// Checks a tag in constant time.
    public static func isValidTag(_ tag: [UInt8], for message: [UInt8], key: SecretBytes) -> Bool {
        constantTimeEquals(self.tag(for: message, key: key), tag)
    }
}

/// HMAC-SHA-256 on libsodium's `crypto_auth_hmacsha256_*`, which takes keys of any length.
public enum HMACSHA256: HMACFunction {
    public static let outputByteCount = Int(crypto_auth_hmacsha256_BYTES)

    public static func authenticate(key: SecretBytes, message: [MACInput]) -> SecretBytes {
        Sodium.ensureInitialised()
        let scratch = SecureScratch(count: crypto_auth_hmacsha256_statebytes())
        let state = scratch.typed(crypto_auth_hmacsha256_state.self)
        let rc = withBytes(key) { k, klen in crypto_auth_hmacsha256_init(state, k, klen) }
        precondition(rc == 0, "crypto_auth_hmacsha256_init failed")
        for part in message {
            let rc = withInput(part) { p, n in crypto_auth_hmacsha256_update(state, p, UInt64(n)) }
            precondition(rc == 0, "crypto_auth_hmacsha256_update failed")
        }
        return withExtendedLifetime(scratch) {
            SecretBytes(count: outputByteCount) { out in
                let rc = crypto_auth_hmacsha256_final(state, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(rc == 0, "crypto_auth_hmacsha256_final failed")
            }
        }
    }
}

/// HMAC-BLAKE2b as the Noise Protocol Framework defines it (section 4.3): RFC 2104 with
/// BLAKE2b-512, block length 128 bytes. libsodium 1.0.18 has no such function, so it is
/// built here from `crypto_generichash`; every intermediate value stays in guarded memory.
public enum HMACBLAKE2b: HMACFunction {
    public static let outputByteCount = 64
    static let blockByteCount = 128

    public static func authenticate(key: SecretBytes, message: [MACInput]) -> SecretBytes {
        // K' = K zero-padded to a block, or BLAKE2b(K) zero-padded if K is longer than a block.
        let paddedKey = SecureScratch(count: blockByteCount)
        if key.count > blockByteCount {
            var hasher = BLAKE2b.Hasher(outputByteCount: outputByteCount)
            hasher.update(key)
            let digest = hasher.finalizeSecret()
            digest.withUnsafeBytes { paddedKey.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        } else if key.count > 0 {
            key.withUnsafeBytes { paddedKey.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }

        let inner = digest(paddedKey: paddedKey, pad: 0x36, message: message)
        return digest(paddedKey: paddedKey, pad: 0x5c, message: [.secret(inner)])
    }

    /// BLAKE2b-512((K' xor pad) ‖ message).
    private static func digest(paddedKey: SecureScratch, pad: UInt8, message: [MACInput]) -> SecretBytes {
        let block = SecretBytes(count: blockByteCount) { out in
            let key = paddedKey.pointer.assumingMemoryBound(to: UInt8.self)
            for index in 0..<blockByteCount { out[index] = key[index] ^ pad }
        }
        var hasher = BLAKE2b.Hasher(outputByteCount: outputByteCount)
        hasher.update(block)
        for part in message {
            switch part {
            case .bytes(let bytes): hasher.update(bytes)
            case .secret(let secret): hasher.update(secret)
            }
        }
        return hasher.finalizeSecret()
    }
}

@inline(__always)
func withInput<R>(_ input: MACInput, _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
    switch input {
    case .bytes(let bytes): withBytes(bytes, body)
    case .secret(let secret): withBytes(secret, body)
    }
}
