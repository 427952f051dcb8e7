import Testing
import ValiseCrypto

/// `KEMPublicKey.encapsulate(toKeyBytes:)`, the one-parse path the hybrid handshake uses for
/// `e1`: it must refuse exactly what `init(bytes:)` refuses, and its secret must decapsulate.
@Suite("KEM: parse and encapsulate in one step")
struct KEMEncapsulateToBytesTests {
    @Test("the secret round-trips; a tampered ciphertext or another key gives another secret")
    func roundTrip() throws {
        let key = MLKEM768PrivateKey()
        let encapsulation = try MLKEM768PublicKey.encapsulate(toKeyBytes: key.publicKey.bytes)
        #expect(encapsulation.ciphertext.count == 1088 && encapsulation.sharedSecret.count == 32)
        let bytes = { (secret: SecretBytes) in secret.withUnsafeBytes { Array($0) } }
        let expected = bytes(encapsulation.sharedSecret)
        #expect(try bytes(key.decapsulate(encapsulation.ciphertext)) == expected)
        var tampered = encapsulation.ciphertext
        tampered[500] ^= 0x01
        #expect(try bytes(key.decapsulate(tampered)) != expected, "implicit rejection")
        #expect(try bytes(MLKEM768PrivateKey().decapsulate(encapsulation.ciphertext)) != expected, "wrong key")
        #expect(throws: CryptoError.self) { try key.decapsulate(Array(encapsulation.ciphertext.dropLast())) }
    }

    @Test("what init(bytes:) refuses is refused: wrong lengths, coefficients out of range")
    func refusals() throws {
        let good = MLKEM768PrivateKey().publicKey.bytes
        var outOfRange = good
        for index in 0..<384 { outOfRange[index] = 0xff }
        for bad in [[], Array(good.dropLast()), good + [0], outOfRange] {
            #expect(throws: CryptoError.self, "\(bad.count) bytes") { try MLKEM768PublicKey.encapsulate(toKeyBytes: bad) }
            #expect(throws: CryptoError.self, "\(bad.count) bytes") { try MLKEM768PublicKey(bytes: bad) }
        }
        #expect(throws: CryptoError.invalidPublicKey("")) { try MLKEM768PublicKey.encapsulate(toKeyBytes: outOfRange) }
    }
}
