import CSodium
import Crypto
import Foundation
import ValiseCrypto

#if canImport(Glibc)
import Glibc
#endif

/// The libsodium and swift-crypto calls of one message of `CryptoBenchmark`, with the same
/// sizes, in a straight line on buffers allocated once: what Valise's path could cost at
/// best. The formats are docs/PROTOCOL.md's (the bytes differ from Valise's only in the keys
/// and the HPKE randomness). The HPKE calls are the ones Valise must make: the recipient's
/// public key parsed from its bytes to seal, the private key expanded from its stored seed to
/// open.
final class RawEnds {
    /// What one message costs in libsodium calls, for the report.
    static let calls = """
        encrypt+seal: 2x crypto_auth_hmacsha256 (KDF_CK) + 3x crypto_auth_hmacsha256 (HKDF-SHA-256 extract and expand to 56 B) \
        + crypto_aead_xchacha20poly1305_ietf_encrypt (256 B, AD 168 B) + sodium_pad (450 to 2,960 B) \
        + swift-crypto XWingMLKEM768X25519.PublicKey(rawRepresentation:) + HPKE.Sender (X-Wing encapsulation, key schedule) \
        + seal (2,960 B, ChaCha20-Poly1305, AD 31 B) + sodium_memzero; \
        open+decrypt: XWingMLKEM768X25519.PrivateKey(seedRepresentation:) + HPKE.Recipient (X-Wing decapsulation, key schedule) \
        + open (2,976 B) + sodium_unpad + sodium_memcmp (id) \
        + 2x crypto_core_ed25519_is_valid_point (recipient, sender) + 5x crypto_auth_hmacsha256 \
        + crypto_aead_xchacha20poly1305_ietf_decrypt (272 B) + sodium_memzero
        """

    static let contentByteCount = 256
    static let sessionMessageByteCount = 2 + 40 + contentByteCount + 16
    static let contentsByteCount = 136 + sessionMessageByteCount
    static let sealedByteCount = 4096
    static let encapsulatedKeyByteCount = HPKEXWing.encapsulatedKeyByteCount
    static let paddedByteCount = sealedByteCount - encapsulatedKeyByteCount - 16
    static let info = Array("Valise_DR_Message_v1".utf8)
    static let envelopeInfo = Data("valise/v2/envelope".utf8)
    static let mailbox = Array("bob@nairobi".utf8)
    static let suite = HPKE.Ciphersuite(kem: .XWingMLKEM768X25519, kdf: .HKDF_SHA256, aead: .chaChaPoly)
    /// The envelope's associated data: u8 1 ‖ u8 name length ‖ name ‖ id 16 ‖ precedence ‖ TTL class.
    static let labelsByteCount = 2 + mailbox.count + 16 + 2

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
    /// AD (168 bytes): Alice's identity key ‖ Bob's ‖ the KEM prekey's id ‖ SHA-256 of its ciphertext ‖ the 40-byte ratchet header.
    private var associatedData: UnsafeMutablePointer<UInt8> { block + 2688 }
    private var content: UnsafeMutablePointer<UInt8> { block + 512 }
    private var labels: UnsafeMutablePointer<UInt8> { block + 1024 }
    private var plaintext: UnsafeMutablePointer<UInt8> { block + 2048 }
    private var envelopeSeed: UnsafeMutablePointer<UInt8> { block + 2592 }
    private var ratchetKey: UnsafeMutablePointer<UInt8> { block + 2624 }
    private var headHash: UnsafeMutablePointer<UInt8> { block + 2656 }
    private static let blockByteCount = 2688 + 168
    /// The envelope contents and their padding (2,960 bytes).
    private let padded: UnsafeMutablePointer<UInt8>
    /// The X-Wing envelope key's public half, as a correspondent record holds it.
    private let envelopePublicKey: Data

    private var sent: UInt32 = 0
    private var received: UInt32 = 0

    init(capacity: Int) {
        self.capacity = capacity
        sealed = .allocate(capacity: capacity * Self.sealedByteCount)
        block = .allocate(capacity: Self.blockByteCount)
        block.initialize(repeating: 0, count: Self.blockByteCount)
        var seed = [UInt8](repeating: 0, count: 32)
        randombytes_buf(&seed, 32)
        envelopePublicKey = try! XWingMLKEM768X25519.PrivateKey(seedRepresentation: seed, publicKey: nil).publicKey.rawRepresentation
        padded = .allocate(capacity: Self.paddedByteCount)
        padded.initialize(repeating: 0, count: Self.paddedByteCount)
        randombytes_buf(sendingChain, 32)
        receivingChain.update(from: sendingChain, count: 32)
        var secretKey = [UInt8](repeating: 0, count: 64)
        crypto_sign_keypair(associatedData, &secretKey)
        crypto_sign_keypair(associatedData + 32, &secretKey)
        // PQXDH's AD goes on: the KEM prekey's id and SHA-256 of its ciphertext (docs/PROTOCOL.md).
        randombytes_buf(associatedData + 64, 64)
        envelopeSeed.update(from: seed, count: 32)
        labels[0] = 1
        labels[1] = UInt8(Self.mailbox.count)
        Self.mailbox.withUnsafeBufferPointer { (labels + 2).update(from: $0.baseAddress!, count: $0.count) }
        labels[Self.labelsByteCount - 2] = CryptoBenchmark.precedence
        labels[Self.labelsByteCount - 1] = CryptoBenchmark.ttlClass
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
        padded.deallocate()
    }

    /// Alice's side: the next message of her sending chain, sealed to Bob's envelope key.
    func encryptAndSeal(id: [UInt8], into index: Int) {
        let out = sealed + index * Self.sealedByteCount
        let key = messageCipher(chain: sendingChain)
        // Header: ratchet key ‖ u32 PN ‖ u32 N, into the AD and into the session message.
        let header = associatedData + 128
        header.update(from: ratchetKey, count: 32)
        Self.putUInt32(0, at: header + 32)
        Self.putUInt32(sent, at: header + 36)
        sent += 1
        // Envelope contents, with the session message encrypted in place.
        padded[0] = 3
        id.withUnsafeBufferPointer { (padded + 1).update(from: $0.baseAddress!, count: 16) }
        (padded + 17).update(from: associatedData + 32, count: 32)
        padded[49] = CryptoBenchmark.precedence
        padded[50] = CryptoBenchmark.ttlClass
        (padded + 51).update(from: associatedData, count: 32)
        Self.putUInt64(41, at: padded + 83)
        (padded + 91).update(from: headHash, count: 32)
        Self.putUInt64(1_800_000_000, at: padded + 123)
        padded[131] = 0
        Self.putUInt32(UInt32(Self.sessionMessageByteCount), at: padded + 132)
        let message = padded + 136
        message[0] = 2
        message[1] = 2
        (message + 2).update(from: header, count: 40)
        var rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
            message + 42, nil, content, UInt64(Self.contentByteCount), associatedData, 168, nil, key + 32, key)
        precondition(rc == 0)
        sodium_memzero(scratch, Self.scratchByteCount)
        var paddedLength = 0
        rc = sodium_pad(&paddedLength, padded, Self.contentsByteCount, Self.paddedByteCount, Self.paddedByteCount)
        precondition(rc == 0 && paddedLength == Self.paddedByteCount)
        id.withUnsafeBufferPointer { (labels + 2 + Self.mailbox.count).update(from: $0.baseAddress!, count: 16) }
        let recipientKey = try! XWingMLKEM768X25519.PublicKey(rawRepresentation: envelopePublicKey)
        var sender = try! HPKE.Sender(recipientKey: recipientKey, ciphersuite: Self.suite, info: Self.envelopeInfo)
        let ciphertext = try! sender.seal(
            UnsafeRawBufferPointer(start: padded, count: Self.paddedByteCount),
            authenticating: UnsafeRawBufferPointer(start: labels, count: Self.labelsByteCount))
        sender.encapsulatedKey.copyBytes(to: out, count: Self.encapsulatedKeyByteCount)
        ciphertext.copyBytes(to: out + Self.encapsulatedKeyByteCount, count: Self.paddedByteCount + 16)
    }

    /// Bob's side: opens envelope `index` and decrypts its message.
    func openAndDecrypt(from index: Int, id: [UInt8]) -> Bool {
        let input = sealed + index * Self.sealedByteCount
        id.withUnsafeBufferPointer { (labels + 2 + Self.mailbox.count).update(from: $0.baseAddress!, count: 16) }
        guard let envelopeKey = try? XWingMLKEM768X25519.PrivateKey(
                  seedRepresentation: UnsafeRawBufferPointer(start: envelopeSeed, count: 32), publicKey: nil),
              var recipient = try? HPKE.Recipient(
                  privateKey: envelopeKey, ciphersuite: Self.suite, info: Self.envelopeInfo,
                  encapsulatedKey: Data(bytesNoCopy: input, count: Self.encapsulatedKeyByteCount, deallocator: .none)),
              let opened = try? recipient.open(
                  UnsafeRawBufferPointer(start: input + Self.encapsulatedKeyByteCount, count: Self.paddedByteCount + 16),
                  authenticating: UnsafeRawBufferPointer(start: labels, count: Self.labelsByteCount)),
              opened.count == Self.paddedByteCount
        else { return false }
        opened.copyBytes(to: padded, count: Self.paddedByteCount)
        var length = 0
        guard sodium_unpad(&length, padded, Self.paddedByteCount, Self.paddedByteCount) == 0, length == Self.contentsByteCount,
              padded[0] == 3, id.withUnsafeBufferPointer({ sodium_memcmp(padded + 1, $0.baseAddress!, 16) }) == 0,
              crypto_core_ed25519_is_valid_point(padded + 17) == 1, crypto_core_ed25519_is_valid_point(padded + 51) == 1,
              memcmp(padded + 17, associatedData + 32, 32) == 0
        else { return false }
        let message = padded + 136
        guard message[0] == 2, message[1] == 2 else { return false }
        (associatedData + 128).update(from: message + 2, count: 40)
        let key = messageCipher(chain: receivingChain)
        received += 1
        let rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
            plaintext, nil, nil, message + 42, UInt64(Self.contentByteCount + 16), associatedData, 168, key + 32, key)
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
