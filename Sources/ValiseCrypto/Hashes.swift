import CSodium

/// BLAKE2b (RFC 7693), libsodium's `crypto_generichash`. Valise uses it for the directory's
/// hash chain (BLAKE2b-256), for Noise (BLAKE2b-512) and for file checksums.
public enum BLAKE2b {
    public static let maximumOutputByteCount = Int(crypto_generichash_BYTES_MAX)
    public static let minimumOutputByteCount = Int(crypto_generichash_BYTES_MIN)
    public static let maximumKeyByteCount = Int(crypto_generichash_KEYBYTES_MAX)

    /// Unkeyed BLAKE2b with an output of 16 to 64 bytes, of public data: libsodium's
    /// one-shot call, with no state to keep in guarded memory (this hashes every directory
    /// entry, so it must stay cheap).
    public static func hash(_ data: [UInt8], outputByteCount: Int = 64) -> [UInt8] {
        precondition((minimumOutputByteCount...maximumOutputByteCount).contains(outputByteCount), "BLAKE2b output length out of range")
        Sodium.ensureInitialised()
        return withBytes(data) { input, length in
            makeBytes(count: outputByteCount) { out in
                let rc = crypto_generichash(out, outputByteCount, input, UInt64(length), nil, 0)
                precondition(rc == 0, "crypto_generichash failed")
            }
        }
    }

    /// Keyed BLAKE2b (a MAC) with a key of 1 to 64 bytes.
    public static func hash(_ data: [UInt8], key: SecretBytes, outputByteCount: Int = 64) throws(CryptoError) -> [UInt8] {
        guard (1...maximumKeyByteCount).contains(key.count) else {
            throw .invalidParameter("BLAKE2b key must be 1 to \(maximumKeyByteCount) bytes")
        }
        var hasher = Hasher(outputByteCount: outputByteCount, key: key)
        hasher.update(data)
        return hasher.finalize()
    }

    /// Incremental BLAKE2b. Its state lives in guarded memory, because it may have absorbed
    /// key material (HMAC-BLAKE2b, keyed hashing).
    public struct Hasher: ~Copyable {
        private let state: SecureScratch
        private let outputByteCount: Int

        public init(outputByteCount: Int = 64) {
            self.init(outputByteCount: outputByteCount, key: nil)
        }

        init(outputByteCount: Int, key: SecretBytes?) {
            precondition(
                (BLAKE2b.minimumOutputByteCount...BLAKE2b.maximumOutputByteCount).contains(outputByteCount),
                "BLAKE2b output length out of range"
            )
            Sodium.ensureInitialised()
            let state = SecureScratch(count: crypto_generichash_statebytes())
            let pointer = state.opaque
            let rc: Int32
            if let key {
                rc = withBytes(key) { k, klen in crypto_generichash_init(pointer, k, klen, outputByteCount) }
            } else {
                rc = crypto_generichash_init(pointer, nil, 0, outputByteCount)
            }
            precondition(rc == 0, "crypto_generichash_init failed")
            self.state = state
            self.outputByteCount = outputByteCount
        }

        public mutating func update(_ data: [UInt8]) {
            withBytes(data) { p, n in update(p, n) }
        }

        public mutating func update(_ secret: SecretBytes) {
            withBytes(secret) { p, n in update(p, n) }
        }

        /// Absorbs bytes in place (a file read in pieces), without copying them to an array.
        public mutating func update(_ buffer: UnsafeRawBufferPointer) {
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            update(base.assumingMemoryBound(to: UInt8.self), buffer.count)
        }

        mutating func update(_ pointer: UnsafePointer<UInt8>, _ count: Int) {
            let rc = crypto_generichash_update(state.opaque, pointer, UInt64(count))
            precondition(rc == 0, "crypto_generichash_update failed")
        }

        public consuming func finalize() -> [UInt8] {
            let state = self.state
            let count = self.outputByteCount
            return makeBytes(count: count) { out in
                let rc = crypto_generichash_final(state.opaque, out, count)
                precondition(rc == 0, "crypto_generichash_final failed")
            }
        }

        /// Finishes into guarded memory, for hashes that are keys.
        public consuming func finalizeSecret() -> SecretBytes {
            let state = self.state
            let count = self.outputByteCount
            return SecretBytes(count: count) { out in
                let rc = crypto_generichash_final(
                    state.opaque,
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self), count
                )
                precondition(rc == 0, "crypto_generichash_final failed")
            }
        }
    }
}

/// SHA-256 (FIPS 180-4), libsodium's `crypto_hash_sha256`.
public enum SHA256 {
    public static let byteCount = Int(crypto_hash_sha256_BYTES)

    public static func hash(_ data: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialised()
        return withBytes(data) { m, n in
            makeBytes(count: byteCount) { out in
                precondition(crypto_hash_sha256(out, m, UInt64(n)) == 0, "crypto_hash_sha256 failed")
            }
        }
    }
}

/// SHA-512 (FIPS 180-4), libsodium's `crypto_hash_sha512`; used for fingerprints.
public enum SHA512 {
    public static let byteCount = Int(crypto_hash_sha512_BYTES)

    public static func hash(_ data: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialised()
        return withBytes(data) { m, n in
            makeBytes(count: byteCount) { out in
                precondition(crypto_hash_sha512(out, m, UInt64(n)) == 0, "crypto_hash_sha512 failed")
            }
        }
    }
}
