import Testing
@testable import ValiseCrypto

@Suite("Argon2id")
struct Argon2idTests {
    let passphrase = SecretBytes(copying: Array("correct horse battery staple".utf8))
    let salt = [UInt8](repeating: 7, count: 16)

    @Test("the same inputs give the same key; any change gives another")
    func deterministic() throws {
        let a = try Argon2id.deriveKey(passphrase: passphrase, salt: salt, parameters: .insecureTest)
        #expect(a.constantTimeEquals(try Argon2id.deriveKey(passphrase: passphrase, salt: salt, parameters: .insecureTest)))
        #expect(!a.constantTimeEquals(try Argon2id.deriveKey(passphrase: passphrase, salt: [UInt8](repeating: 8, count: 16), parameters: .insecureTest)))
        #expect(!a.constantTimeEquals(try Argon2id.deriveKey(passphrase: SecretBytes(copying: [1]), salt: salt, parameters: .insecureTest)))
        let moreWork = PasswordKDFParameters(profile: .insecureTest, iterations: 2, memoryKiB: 8)
        #expect(!a.constantTimeEquals(try Argon2id.deriveKey(passphrase: passphrase, salt: salt, parameters: moreWork)))
    }

    @Test("parameters outside the allowed range are refused before any work")
    func bounds() {
        for parameters in [
            PasswordKDFParameters(profile: .standard, iterations: 0, memoryKiB: 262_144),
            PasswordKDFParameters(profile: .standard, iterations: 257, memoryKiB: 262_144),
            PasswordKDFParameters(profile: .standard, iterations: 8, memoryKiB: 4),
            PasswordKDFParameters(profile: .standard, iterations: 8, memoryKiB: 4 * 1024 * 1024 + 1),
        ] {
            #expect(!parameters.isAllowed)
            #expect(throws: CryptoError.self) { try Argon2id.deriveKey(passphrase: passphrase, salt: salt, parameters: parameters) }
        }
        #expect(throws: CryptoError.self) { try Argon2id.deriveKey(passphrase: passphrase, salt: [1], parameters: .insecureTest) }
    }

    @Test("the standard profile is at least 256 MiB and only it meets the standard")
    func profiles() {
        #expect(PasswordKDFParameters.standard.memoryKiB >= 256 * 1024)
        #expect(PasswordKDFParameters.standard.meetsStandard)
        #expect(!PasswordKDFParameters.insecureTest.meetsStandard)
        // A weak set of numbers does not pass for standard because of its label.
        #expect(!PasswordKDFParameters(profile: .standard, iterations: 1, memoryKiB: 8).meetsStandard)
        #expect(PasswordKDFParameters.Profile(name: "insecure-test") == .insecureTest)
        #expect(PasswordKDFParameters.Profile(name: "fast") == nil)
    }
}
