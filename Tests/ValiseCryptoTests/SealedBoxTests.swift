import Testing
@testable import ValiseCrypto

@Suite("Sealed boxes")
struct SealedBoxTests {
    @Test("only the recipient opens a sealed box, and any change is detected")
    func sealAndOpen() throws {
        let recipient = AgreementPrivateKey()
        let message = Array("for the recipient only".utf8)
        let sealed = SealedBox.seal(message, to: recipient.publicKey)
        #expect(sealed.count == message.count + SealedBox.overheadByteCount)
        #expect(try SealedBox.open(sealed, with: recipient) == message)
        // Two seals of one message differ (a fresh ephemeral key each time).
        #expect(SealedBox.seal(message, to: recipient.publicKey) != sealed)

        #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(sealed, with: AgreementPrivateKey()) }
        for index in [0, 31, 32, sealed.count - 1] {
            #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(flipped(sealed, at: index), with: recipient) }
        }
        for length in [0, 47, 48, sealed.count - 1] {
            #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(Array(sealed.prefix(length)), with: recipient) }
        }
        #expect(try SealedBox.open(SealedBox.seal([], to: recipient.publicKey), with: recipient).isEmpty)
    }
}
