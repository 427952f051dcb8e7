import Testing
@testable import ValiseCrypto

@Suite("SecretBytes")
struct SecretBytesTests {
    @Test("holds what it was given")
    func contents() {
        let secret = SecretBytes(copying: [1, 2, 3])
        #expect(secret.count == 3)
        #expect(secret.withUnsafeBytes { Array($0) } == [1, 2, 3])
        #expect(SecretBytes(zeroes: 4).withUnsafeBytes { Array($0) } == [0, 0, 0, 0])
        #expect(SecretBytes(copying: []).count == 0)
    }

    @Test("description, debug description and mirror never show the bytes")
    func redaction() {
        let secret = SecretBytes(copying: Array("hunter2hunter2".utf8))
        for text in ["\(secret)", String(describing: secret), String(reflecting: secret)] {
            #expect(!text.contains("hunter2"))
            #expect(text.contains("redacted"))
        }
        #expect(Mirror(reflecting: secret).children.isEmpty)
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        #expect(!dumped.contains("104")) // 'h' as a decimal byte
    }

    @Test("equality is by content and length")
    func equality() {
        let a = SecretBytes(copying: [1, 2, 3])
        #expect(a.constantTimeEquals(SecretBytes(copying: [1, 2, 3])))
        #expect(!a.constantTimeEquals(SecretBytes(copying: [1, 2, 4])))
        #expect(!a.constantTimeEquals(SecretBytes(copying: [1, 2])))
        #expect(SecretBytes(copying: []).constantTimeEquals(SecretBytes(copying: [])))
    }

    @Test("slice and concatenation")
    func sliceAndConcatenate() {
        let a = SecretBytes(copying: [1, 2, 3, 4])
        #expect(a.slice(1..<3).withUnsafeBytes { Array($0) } == [2, 3])
        #expect(a.slice(2..<2).count == 0)
        let joined = SecretBytes.concatenating([a, SecretBytes(copying: []), SecretBytes(copying: [5])])
        #expect(joined.withUnsafeBytes { Array($0) } == [1, 2, 3, 4, 5])
    }

    @Test("a throwing initialiser releases the memory and rethrows")
    func throwingInitialiser() {
        struct Failure: Error {}
        #expect(throws: Failure.self) {
            _ = try SecretBytes(count: 32) { (_) throws(Failure) in throw Failure() }
        }
    }

    @Test("random secrets differ")
    func random() {
        #expect(!SecretBytes.random(count: 32).constantTimeEquals(SecretBytes.random(count: 32)))
    }
}
