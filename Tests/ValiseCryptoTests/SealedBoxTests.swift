import Testing
@testable import ValiseCrypto

@Suite("Sealed boxes")
struct SealedBoxTests {
    @Test("only the recipient opens a sealed box, and any change is detected")
    func sealAndOpen() throws {
        let recipient = AgreementPrivateKey()
        let message = Array("for the recipient only".utf8)
        let sealed = try SealedBox.seal(message, to: recipient.publicKey)
        #expect(sealed.count == message.count + SealedBox.overheadByteCount)
        #expect(try SealedBox.open(sealed, with: recipient) == message)
        // Two seals of one message differ (a fresh ephemeral key each time).
        #expect(try SealedBox.seal(message, to: recipient.publicKey) != sealed)

        #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(sealed, with: AgreementPrivateKey()) }
        for index in [0, 31, 32, sealed.count - 1] {
            #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(flipped(sealed, at: index), with: recipient) }
        }
        for length in [0, 47, 48, sealed.count - 1] {
            #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(Array(sealed.prefix(length)), with: recipient) }
        }
        #expect(try SealedBox.open(SealedBox.seal([], to: recipient.publicKey), with: recipient).isEmpty)
    }

    /// Small-order points (RFC 7748 section 5's list, from libsodium's blocklist): a key
    /// someone else published must make sealing fail cleanly, never stop the process.
    @Test("sealing to a small-order key throws, and such keys are recognised", arguments: [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ])
    func smallOrder(hex: String) throws {
        let key = try AgreementPublicKey(bytes: try #require(Hex.decode(hex)))
        #expect(key.isSmallOrder)
        #expect(throws: CryptoError.weakSharedSecret) { try SealedBox.seal([1, 2, 3], to: key) }
        #expect(!AgreementPrivateKey().publicKey.isSmallOrder)
    }
}
