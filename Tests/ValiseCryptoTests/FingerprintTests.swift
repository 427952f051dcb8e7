import Testing
@testable import ValiseCrypto

@Suite("Fingerprints")
struct FingerprintTests {
    /// Computed independently with Python's hashlib from the definition in docs/PROTOCOL.md
    /// ("Fingerprints"), for the RFC 8032 TEST 1 public key.
    @Test("known answer from the specification")
    func knownAnswer() throws {
        let key = try SigningPublicKey(bytes: hexDecode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")!)
        let fingerprint = Fingerprint(identityKey: key, memberName: "alice@jakarta")
        #expect(fingerprint.description == "31796 14574 36770 55458 57016 18037")
        #expect(fingerprint.digits == "317961457436770554585701618037")
    }

    @Test("depends on both the key and the name")
    func binding() {
        let key = SigningKey().publicKey
        let a = Fingerprint(identityKey: key, memberName: "alice@jakarta")
        #expect(a != Fingerprint(identityKey: key, memberName: "alice@nairobi"))
        #expect(a != Fingerprint(identityKey: SigningKey().publicKey, memberName: "alice@jakarta"))
        #expect(a.digits.count == 30 && a.digits.allSatisfy(\.isNumber))
    }
}
