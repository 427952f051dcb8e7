import CSodium

// The two AEADs Valise uses, both from libsodium:
// - ChaCha20-Poly1305-IETF (RFC 8439): 96-bit nonces from a counter, as in Noise;
// - XChaCha20-Poly1305-IETF (draft-irtf-cfrg-xchacha): 192-bit nonces, safe to pick at random.
// Ciphertexts are the encrypted bytes followed by the 16-byte Poly1305 tag.

typealias AEADEncrypt = @Sendable (
    UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt64>?,
    UnsafePointer<UInt8>?, UInt64, UnsafePointer<UInt8>?, UInt64,
    UnsafePointer<UInt8>?, UnsafePointer<UInt8>, UnsafePointer<UInt8>
) -> Int32

typealias AEADDecrypt = @Sendable (
    UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt64>?, UnsafeMutablePointer<UInt8>?,
    UnsafePointer<UInt8>, UInt64, UnsafePointer<UInt8>?, UInt64,
    UnsafePointer<UInt8>, UnsafePointer<UInt8>
) -> Int32

/// The shared code of both AEADs; only the libsodium functions and the nonce size differ.
/// Public only so that `AEADCipher` can name it; its members are internal.
public struct AEADPrimitive: Sendable {
    let name: String
    let nonceByteCount: Int
    let encrypt: AEADEncrypt
    let decrypt: AEADDecrypt

    static let tagByteCount = 16
    /// Valise's own bound on one message; libsodium's are far larger (and one of its
    /// `*_MAX` constants reads as negative in Swift).
    static let maximumMessageByteCount = 1 << 30

    /// Encrypts `length` bytes at `message` into `out` (`length + 16` bytes).
    func seal(
        message: UnsafePointer<UInt8>, length: Int, into out: UnsafeMutablePointer<UInt8>,
        key: SymmetricKey, nonce: [UInt8], ad: [UInt8]
    ) {
        precondition(nonce.count == nonceByteCount, "\(name) nonce has the wrong length")
        precondition(length <= Self.maximumMessageByteCount, "\(name) message too large")
        let rc = withBytes(ad) { a, alen in
            withBytes(nonce) { n, _ in
                withBytes(key.secret) { k, _ in
                    encrypt(out, nil, message, UInt64(length), a, UInt64(alen), nil, n, k)
                }
            }
        }
        precondition(rc == 0, "\(name) encryption failed")
    }

    /// Decrypts `length` bytes at `sealed` into `out` (`length - 16` bytes), or throws.
    func open(
        sealed: UnsafePointer<UInt8>, length: Int, into out: UnsafeMutablePointer<UInt8>,
        key: SymmetricKey, nonce: [UInt8], ad: [UInt8]
    ) throws(CryptoError) {
        precondition(nonce.count == nonceByteCount, "\(name) nonce has the wrong length")
        guard length >= Self.tagByteCount else { throw .authenticationFailed }
        guard length - Self.tagByteCount <= Self.maximumMessageByteCount else {
            throw .tooLarge("\(name) ciphertext", limit: Self.maximumMessageByteCount)
        }
        let rc = withBytes(ad) { a, alen in
            withBytes(nonce) { n, _ in
                withBytes(key.secret) { k, _ in
                    decrypt(out, nil, nil, sealed, UInt64(length), a, UInt64(alen), n, k)
                }
            }
        }
        try Sodium.check(rc, .authenticationFailed)
    }

    func seal(_ plaintext: [UInt8], key: SymmetricKey, nonce: [UInt8], ad: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialised()
        return withBytes(plaintext) { m, mlen in
            makeBytes(count: mlen + Self.tagByteCount) { out in
                seal(message: m, length: mlen, into: out, key: key, nonce: nonce, ad: ad)
            }
        }
    }

    func seal(_ plaintext: SecretBytes, key: SymmetricKey, nonce: [UInt8], ad: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialised()
        return withBytes(plaintext) { m, mlen in
            makeBytes(count: mlen + Self.tagByteCount) { out in
                seal(message: m, length: mlen, into: out, key: key, nonce: nonce, ad: ad)
            }
        }
    }

    func open(_ sealed: [UInt8], key: SymmetricKey, nonce: [UInt8], ad: [UInt8]) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialised()
        guard sealed.count >= Self.tagByteCount else { throw .authenticationFailed }
        return try withBytes(sealed) { (c, clen) throws(CryptoError) -> [UInt8] in
            try makeBytes(count: clen - Self.tagByteCount) { (out) throws(CryptoError) in
                try open(sealed: c, length: clen, into: out, key: key, nonce: nonce, ad: ad)
            }
        }
    }

    func openSecret(_ sealed: [UInt8], key: SymmetricKey, nonce: [UInt8], ad: [UInt8]) throws(CryptoError) -> SecretBytes {
        Sodium.ensureInitialised()
        guard sealed.count >= Self.tagByteCount else { throw .authenticationFailed }
        return try withBytes(sealed) { (c, clen) throws(CryptoError) -> SecretBytes in
            try SecretBytes(count: clen - Self.tagByteCount) { (out) throws(CryptoError) in
                // libsodium writes nothing for an empty plaintext; give it a valid address anyway.
                var spare: UInt8 = 0
                let target = out.baseAddress?.assumingMemoryBound(to: UInt8.self)
                if let target {
                    try open(sealed: c, length: clen, into: target, key: key, nonce: nonce, ad: ad)
                } else {
                    try open(sealed: c, length: clen, into: &spare, key: key, nonce: nonce, ad: ad)
                }
            }
        }
    }
}

/// An AEAD cipher: ChaCha20-Poly1305 or XChaCha20-Poly1305. The two differ only in their
/// nonces, which are distinct types, so a nonce made for one cannot be given to the other.
public protocol AEADCipher {
    static var primitive: AEADPrimitive { get }
}

/// A nonce for `Cipher`, checked for length when made.
public struct AEADNonce<Cipher: AEADCipher>: Hashable, Sendable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(CryptoError) {
        let expected = Cipher.primitive.nonceByteCount
        guard bytes.count == expected else {
            throw .invalidLength("\(Cipher.primitive.name) nonce", expected: expected, actual: bytes.count)
        }
        self.bytes = bytes
    }
}

extension AEADCipher {
    public typealias Nonce = AEADNonce<Self>
    public static var nonceByteCount: Int { primitive.nonceByteCount }
    public static var tagByteCount: Int { AEADPrimitive.tagByteCount }

    /// Encrypts and authenticates `plaintext` and `associatedData`; returns ciphertext ‖ tag.
    public static func seal(
        _ plaintext: [UInt8], using key: SymmetricKey, nonce: Nonce, authenticating associatedData: [UInt8] = []
    ) -> [UInt8] {
        primitive.seal(plaintext, key: key, nonce: nonce.bytes, ad: associatedData)
    }

    /// Encrypts secret bytes without copying them out of guarded memory first.
    public static func seal(
        _ plaintext: SecretBytes, using key: SymmetricKey, nonce: Nonce, authenticating associatedData: [UInt8] = []
    ) -> [UInt8] {
        primitive.seal(plaintext, key: key, nonce: nonce.bytes, ad: associatedData)
    }

    /// Verifies and decrypts ciphertext ‖ tag; throws `.authenticationFailed` on any mismatch.
    public static func open(
        _ sealed: [UInt8], using key: SymmetricKey, nonce: Nonce, authenticating associatedData: [UInt8] = []
    ) throws(CryptoError) -> [UInt8] {
        try primitive.open(sealed, key: key, nonce: nonce.bytes, ad: associatedData)
    }

    /// Decrypts straight into guarded memory, for plaintexts that are secrets (keystores).
    public static func openSecret(
        _ sealed: [UInt8], using key: SymmetricKey, nonce: Nonce, authenticating associatedData: [UInt8] = []
    ) throws(CryptoError) -> SecretBytes {
        try primitive.openSecret(sealed, key: key, nonce: nonce.bytes, ad: associatedData)
    }
}

/// ChaCha20-Poly1305 as RFC 8439 defines it (libsodium's `_ietf` variant): 96-bit nonces,
/// which must never repeat under one key, so they come from counters (as in Noise).
public enum ChaChaPoly: AEADCipher {
    public static let primitive = AEADPrimitive(
        name: "ChaCha20-Poly1305",
        nonceByteCount: 12,
        encrypt: crypto_aead_chacha20poly1305_ietf_encrypt,
        decrypt: crypto_aead_chacha20poly1305_ietf_decrypt
    )
}

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): 192-bit nonces, long enough to pick at random.
public enum XChaChaPoly: AEADCipher {
    public static let primitive = AEADPrimitive(
        name: "XChaCha20-Poly1305",
        nonceByteCount: 24,
        encrypt: crypto_aead_xchacha20poly1305_ietf_encrypt,
        decrypt: crypto_aead_xchacha20poly1305_ietf_decrypt
    )
}

extension AEADNonce where Cipher == XChaChaPoly {
    /// A fresh random nonce (safe only for the 192-bit nonces of XChaCha20-Poly1305).
    public static func random() -> Self { try! Self(bytes: Random.bytes(count: XChaChaPoly.nonceByteCount)) }
}
