import CSodium

#if canImport(Glibc)
import Glibc
#endif

/// The libsodium calls of one message of `CryptoBenchmark`, with the same sizes, in a
/// straight line on buffers allocated once: what Valise's path could cost at best. The
/// formats are docs/PROTOCOL.md's (the bytes differ from Valise's only in the keys).
final class RawEnds {
    /// What one message costs in libsodium calls, for the report.
    static let calls = """
        encrypt+seal: 2x crypto_auth_hmacsha256 (KDF_CK) + 3x crypto_auth_hmacsha256 (HKDF-SHA-256 extract and expand to 56 B) \
        + crypto_aead_xchacha20poly1305_ietf_encrypt (256 B, AD 104 B) + sodium_pad (449 to 976 B) \
        + crypto_box_seal (976 B: X25519 keypair and scalarmult, BLAKE2b nonce, XSalsa20-Poly1305) + sodium_memzero; \
        open+decrypt: crypto_box_seal_open (1024 B) + sodium_unpad + sodium_memcmp (id) \
        + 2x crypto_core_ed25519_is_valid_point (recipient, sender) + 5x crypto_auth_hmacsha256 \
        + crypto_aead_xchacha20poly1305_ietf_decrypt (272 B) + sodium_memzero
        """

    static let contentByteCount = 256
    static let sessionMessageByteCount = 2 + 40 + contentByteCount + 16
    static let contentsByteCount = 135 + sessionMessageByteCount
    static let sealedByteCount = 1024
    static let paddedByteCount = sealedByteCount - 48
    static let info = Array("Valise_DR_Message_v1".utf8)

    let capacity: Int
    /// Every envelope of a round, so that the decrypting side has the encrypting side's output.
    private let sealed: UnsafeMutablePointer<UInt8>
    /// One block for everything else: keys, chain keys, scratch, message buffers.
    private let block: UnsafeMutablePointer<UInt8>

    private var sendingChain: UnsafeMutablePointer<UInt8> { block }
    private var receivingChain: UnsafeMutablePointer<UInt8> { block + 32 }
    /// next chain key 32 ‖ message key 32 ‖ PRK 32 ‖ OKM 64 ‖ HKDF input 53 (wiped each message)
    private var scratch: UnsafeMutablePointer<UInt8> { block + 64 }
    private static let scratchByteCount = 32 + 32 + 32 + 64 + 53
    private var zeroSalt: UnsafeMutablePointer<UInt8> { block + 320 }
    /// AD: Alice's identity key ‖ Bob's identity key ‖ the 40-byte ratchet header.
    private var associatedData: UnsafeMutablePointer<UInt8> { block + 384 }
    private var content: UnsafeMutablePointer<UInt8> { block + 512 }
    private var padded: UnsafeMutablePointer<UInt8> { block + 1024 }
    private var plaintext: UnsafeMutablePointer<UInt8> { block + 2048 }
    private var envelopePublicKey: UnsafeMutablePointer<UInt8> { block + 2560 }
    private var envelopeSecretKey: UnsafeMutablePointer<UInt8> { block + 2592 }
    private var ratchetKey: UnsafeMutablePointer<UInt8> { block + 2624 }
    private var headHash: UnsafeMutablePointer<UInt8> { block + 2656 }
    private static let blockByteCount = 2688

    private var sent: UInt32 = 0
    private var received: UInt32 = 0

    init(capacity: Int) {
        self.capacity = capacity
        sealed = .allocate(capacity: capacity * Self.sealedByteCount)
        block = .allocate(capacity: Self.blockByteCount)
        block.initialize(repeating: 0, count: Self.blockByteCount)
        randombytes_buf(sendingChain, 32)
        receivingChain.update(from: sendingChain, count: 32)
        var secretKey = [UInt8](repeating: 0, count: 64)
        crypto_sign_keypair(associatedData, &secretKey)
        crypto_sign_keypair(associatedData + 32, &secretKey)
        crypto_box_keypair(envelopePublicKey, envelopeSecretKey)
        randombytes_buf(ratchetKey, 32)
        randombytes_buf(headHash, 32)
        content[0] = 1
        content[1] = 1
        Self.putUInt32(UInt32(Self.contentByteCount - 6), at: content + 2)
        (content + 6).initialize(repeating: UInt8(ascii: "x"), count: Self.contentByteCount - 6)
    }

    deinit {
        sealed.deallocate()
        block.deallocate()
    }

    /// Alice's side: the next message of her sending chain, sealed to Bob's envelope key.
    func encryptAndSeal(id: [UInt8], into index: Int) {
        let out = sealed + index * Self.sealedByteCount
        let key = messageCipher(chain: sendingChain)
        // Header: ratchet key ‖ u32 PN ‖ u32 N, into the AD and into the session message.
        let header = associatedData + 64
        header.update(from: ratchetKey, count: 32)
        Self.putUInt32(0, at: header + 32)
        Self.putUInt32(sent, at: header + 36)
        sent += 1
        // Envelope contents, with the session message encrypted in place.
        padded[0] = 1
        id.withUnsafeBufferPointer { (padded + 1).update(from: $0.baseAddress!, count: 16) }
        (padded + 17).update(from: associatedData + 32, count: 32)
        padded[49] = CryptoBenchmark.precedence
        padded[50] = CryptoBenchmark.ttlClass
        (padded + 51).update(from: associatedData, count: 32)
        Self.putUInt64(41, at: padded + 83)
        (padded + 91).update(from: headHash, count: 32)
        Self.putUInt64(1_800_000_000, at: padded + 123)
        Self.putUInt32(UInt32(Self.sessionMessageByteCount), at: padded + 131)
        let message = padded + 135
        message[0] = 1
        message[1] = 2
        (message + 2).update(from: header, count: 40)
        var rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
            message + 42, nil, content, UInt64(Self.contentByteCount), associatedData, 104, nil, key + 32, key)
        precondition(rc == 0)
        sodium_memzero(scratch, Self.scratchByteCount)
        var paddedLength = 0
        rc = sodium_pad(&paddedLength, padded, Self.contentsByteCount, Self.paddedByteCount, Self.paddedByteCount)
        precondition(rc == 0 && paddedLength == Self.paddedByteCount)
        rc = crypto_box_seal(out, padded, UInt64(Self.paddedByteCount), envelopePublicKey)
        precondition(rc == 0)
    }

    /// Bob's side: opens envelope `index` and decrypts its message.
    func openAndDecrypt(from index: Int, id: [UInt8]) -> Bool {
        let input = sealed + index * Self.sealedByteCount
        guard crypto_box_seal_open(padded, input, UInt64(Self.sealedByteCount), envelopePublicKey, envelopeSecretKey) == 0 else { return false }
        var length = 0
        guard sodium_unpad(&length, padded, Self.paddedByteCount, Self.paddedByteCount) == 0, length == Self.contentsByteCount,
              padded[0] == 1, id.withUnsafeBufferPointer({ sodium_memcmp(padded + 1, $0.baseAddress!, 16) }) == 0,
              crypto_core_ed25519_is_valid_point(padded + 17) == 1, crypto_core_ed25519_is_valid_point(padded + 51) == 1,
              memcmp(padded + 17, associatedData + 32, 32) == 0
        else { return false }
        let message = padded + 135
        guard message[0] == 1, message[1] == 2 else { return false }
        (associatedData + 64).update(from: message + 2, count: 40)
        let key = messageCipher(chain: receivingChain)
        received += 1
        let rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
            plaintext, nil, nil, message + 42, UInt64(Self.contentByteCount + 16), associatedData, 104, key + 32, key)
        sodium_memzero(scratch, Self.scratchByteCount)
        return rc == 0 && plaintext[0] == 1
    }

    /// KDF_CK, advancing `chain`, then HKDF of the message key: returns key (32) ‖ nonce (24)
    /// in the scratch area.
    private func messageCipher(chain: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        let next = scratch, messageKey = scratch + 32, prk = scratch + 64, okm = scratch + 96, input = scratch + 160
        var constant: UInt8 = 0x02
        crypto_auth_hmacsha256(next, &constant, 1, chain)
        constant = 0x01
        crypto_auth_hmacsha256(messageKey, &constant, 1, chain)
        chain.update(from: next, count: 32)
        crypto_auth_hmacsha256(prk, messageKey, 32, zeroSalt)
        Self.info.withUnsafeBufferPointer { (input + 32).update(from: $0.baseAddress!, count: 20) }
        input[52] = 1
        crypto_auth_hmacsha256(okm, input + 32, 21, prk)
        input.update(from: okm, count: 32)
        input[52] = 2
        crypto_auth_hmacsha256(okm + 32, input, 53, prk)
        return okm
    }

    private static func putUInt32(_ value: UInt32, at pointer: UnsafeMutablePointer<UInt8>) {
        withUnsafeBytes(of: value.bigEndian) { pointer.update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 4) }
    }

    private static func putUInt64(_ value: UInt64, at pointer: UnsafeMutablePointer<UInt8>) {
        withUnsafeBytes(of: value.bigEndian) { pointer.update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 8) }
    }
}
