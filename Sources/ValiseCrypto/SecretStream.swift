import CSodium

/// libsodium's `crypto_secretstream_xchacha20poly1305`: a sequence of chunks under one key,
/// each authenticated with its position, so that chunks cannot be dropped, reordered or
/// replayed, and a FINAL tag marks the true end (a truncated stream has none).
///
/// Valise encrypts attached files with it (docs/PROTOCOL.md, "Attachments"). The state
/// (the running key and nonce) lives in guarded memory and is wiped with the pusher or
/// puller; the key is a `SymmetricKey` and never leaves guarded memory either.
public enum SecretStream {
    /// The header that starts a stream (its random nonce), 24 bytes.
    public static let headerByteCount = Int(crypto_secretstream_xchacha20poly1305_headerbytes())
    /// What each chunk adds: an encrypted tag byte and a 16-byte MAC, 17 bytes.
    public static let overheadByteCount = Int(crypto_secretstream_xchacha20poly1305_abytes())
    public static let keyByteCount = Int(crypto_secretstream_xchacha20poly1305_keybytes())
    /// Valise's own bound on one chunk (libsodium's `_MAX` does not import cleanly).
    public static let maximumChunkByteCount = 1 << 24

    /// A chunk's tag. Valise writes only `.message` and `.final`; a reader may see the others
    /// from a foreign writer and decides itself what to make of them.
    public enum Tag: UInt8, Sendable {
        case message = 0
        case push = 1
        case rekey = 2
        case final = 3
    }

    /// A fresh random key (libsodium's `_keygen`).
    public static func makeKey() -> SymmetricKey {
        Sodium.ensureInitialised()
        let secret = SecretBytes(count: keyByteCount) { buffer in
            crypto_secretstream_xchacha20poly1305_keygen(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return try! SymmetricKey(secret)
    }

    /// Encrypts a stream. Make one, write its `header` first, then `push` each chunk, the
    /// last with `.final`.
    public struct Pusher: ~Copyable {
        private let state: SecureScratch
        /// The stream's header, to be written before the first chunk.
        public let header: [UInt8]

        public init(key: SymmetricKey) {
            Sodium.ensureInitialised()
            let state = SecureScratch(count: crypto_secretstream_xchacha20poly1305_statebytes())
            let pointer = state.typed(crypto_secretstream_xchacha20poly1305_state.self)
            header = makeBytes(count: SecretStream.headerByteCount) { out in
                let rc = withBytes(key.secret) { k, _ in crypto_secretstream_xchacha20poly1305_init_push(pointer, out, k) }
                precondition(rc == 0, "crypto_secretstream_xchacha20poly1305_init_push failed")
            }
            self.state = state
        }

        /// Encrypts one chunk (`count + 17` bytes out), with empty additional data.
        public mutating func push(_ chunk: [UInt8], tag: Tag) -> [UInt8] {
            precondition(chunk.count <= SecretStream.maximumChunkByteCount, "secretstream chunk too large")
            let pointer = state.typed(crypto_secretstream_xchacha20poly1305_state.self)
            return makeBytes(count: chunk.count + SecretStream.overheadByteCount) { out in
                let rc = withBytes(chunk) { m, mlen in
                    crypto_secretstream_xchacha20poly1305_push(pointer, out, nil, m, UInt64(mlen), nil, 0, tag.rawValue)
                }
                precondition(rc == 0, "crypto_secretstream_xchacha20poly1305_push failed")
            }
        }
    }

    /// Decrypts a stream: made from its header, then `pull` each chunk in order. A chunk
    /// that fails to authenticate, or any chunk after one tagged `.final`, throws.
    public struct Puller: ~Copyable {
        private let state: SecureScratch
        /// True once a chunk tagged `.final` was read: nothing may follow it.
        public private(set) var isFinished = false

        public init(key: SymmetricKey, header: [UInt8]) throws(CryptoError) {
            guard header.count == SecretStream.headerByteCount else {
                throw .invalidLength("secretstream header", expected: SecretStream.headerByteCount, actual: header.count)
            }
            Sodium.ensureInitialised()
            let state = SecureScratch(count: crypto_secretstream_xchacha20poly1305_statebytes())
            let pointer = state.typed(crypto_secretstream_xchacha20poly1305_state.self)
            let rc = withBytes(header) { h, _ in
                withBytes(key.secret) { k, _ in crypto_secretstream_xchacha20poly1305_init_pull(pointer, h, k) }
            }
            // init_pull only fails for a header it cannot use; a wrong key shows at the first pull.
            try Sodium.check(rc, .authenticationFailed)
            self.state = state
        }

        /// Verifies and decrypts one chunk; returns its plaintext and tag.
        public mutating func pull(_ chunk: [UInt8]) throws(CryptoError) -> (plaintext: [UInt8], tag: Tag) {
            guard !isFinished else { throw .invalidParameter("secretstream data after the final chunk") }
            guard chunk.count >= SecretStream.overheadByteCount else { throw .authenticationFailed }
            guard chunk.count - SecretStream.overheadByteCount <= SecretStream.maximumChunkByteCount else {
                throw .tooLarge("secretstream chunk", limit: SecretStream.maximumChunkByteCount)
            }
            let pointer = state.typed(crypto_secretstream_xchacha20poly1305_state.self)
            var tagByte: UInt8 = 0
            let plaintext = try makeBytes(count: chunk.count - SecretStream.overheadByteCount) { (out) throws(CryptoError) in
                let rc = withBytes(chunk) { c, clen in
                    crypto_secretstream_xchacha20poly1305_pull(pointer, out, nil, &tagByte, c, UInt64(clen), nil, 0)
                }
                try Sodium.check(rc, .authenticationFailed)
            }
            guard let tag = Tag(rawValue: tagByte) else { throw .authenticationFailed }
            if tag == .final { isFinished = true }
            return (plaintext, tag)
        }
    }
}
