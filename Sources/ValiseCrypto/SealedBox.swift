import CSodium

/// Anonymous public-key encryption to an X25519 key (libsodium's `crypto_box_seal`): an
/// ephemeral key pair per message, so the ciphertext says nothing about its sender.
public enum SealedBox {
    /// Bytes a sealed box adds: the ephemeral public key and the tag.
    public static let overheadByteCount = crypto_box_sealbytes()
    public static let maximumMessageByteCount = 1 << 30

    /// Throws `.weakSharedSecret` for a small-order recipient key (libsodium refuses it):
    /// such a key comes from someone else, so it must never stop the caller.
    public static func seal(_ message: [UInt8], to recipient: AgreementPublicKey) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialised()
        precondition(message.count <= maximumMessageByteCount, "sealed box message too large")
        return try withBytes(message) { (m, mlen) throws(CryptoError) -> [UInt8] in
            try makeBytes(count: mlen + overheadByteCount) { (out) throws(CryptoError) in
                let rc = withBytes(recipient.bytes) { pk, _ in crypto_box_seal(out, m, UInt64(mlen), pk) }
                try Sodium.check(rc, .weakSharedSecret)
            }
        }
    }

    /// Opens a sealed box addressed to `recipient`; throws `.authenticationFailed` if it was
    /// sealed to another key, altered, or truncated.
    public static func open(_ sealed: [UInt8], with recipient: AgreementPrivateKey) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialised()
        guard sealed.count >= overheadByteCount else { throw .authenticationFailed }
        guard sealed.count - overheadByteCount <= maximumMessageByteCount else {
            throw .tooLarge("sealed box", limit: maximumMessageByteCount)
        }
        return try withBytes(sealed) { (c, clen) throws(CryptoError) -> [UInt8] in
            try makeBytes(count: clen - overheadByteCount) { (out) throws(CryptoError) in
                let rc = withBytes(recipient.publicKey.bytes) { pk, _ in
                    withBytes(recipient.rawRepresentation) { sk, _ in
                        crypto_box_seal_open(out, c, UInt64(clen), pk, sk)
                    }
                }
                try Sodium.check(rc, .authenticationFailed)
            }
        }
    }
}
