import Testing
@testable import ValiseCrypto

@Suite("Keystore file format")
struct KeystoreFileTests {
    let passphrase = SecretBytes(copying: Array("correct horse battery staple".utf8))
    let payload = SecretBytes(copying: Array("device keys would go here".utf8))

    func sealed() throws -> [UInt8] {
        try KeystoreFile.seal(payload, contents: .device, passphrase: passphrase, parameters: .insecureTest).bytes
    }

    /// Rewrites the trailing checksum so that a test can reach the checks behind it.
    func withValidChecksum(_ bytes: [UInt8]) -> [UInt8] {
        let body = Array(bytes.dropLast(32))
        return body + BLAKE2b.hash(body, outputByteCount: 32)
    }

    @Test("seal then open returns the payload; the header records the parameters")
    func roundTrip() throws {
        let bytes = try sealed()
        #expect(bytes.count == 64 + payload.count + 16 + 32)
        #expect(Array(bytes.prefix(8)) == Array("VALISEKS".utf8))
        let file = try KeystoreFile(parsing: bytes)
        #expect(file.contents == .device)
        #expect(file.parameters == .insecureTest)
        #expect(try file.open(passphrase: passphrase, expecting: .device).constantTimeEquals(payload))
        // Fresh salt and nonce each time.
        #expect(try sealed() != bytes)
    }

    @Test("a wrong passphrase is reported as such")
    func wrongPassphrase() throws {
        let file = try KeystoreFile(parsing: sealed())
        #expect(throws: KeystoreError.wrongPassphrase) {
            try file.open(passphrase: SecretBytes(copying: Array("correct horse battery stapler".utf8)), expecting: .device)
        }
    }

    @Test("every truncation is reported as truncated or not a keystore, before any key derivation")
    func truncation() throws {
        let bytes = try sealed()
        for length in 0..<bytes.count {
            #expect(throws: KeystoreError.self) { try KeystoreFile(parsing: Array(bytes.prefix(length))) }
        }
        #expect(throws: KeystoreError.truncated) { try KeystoreFile(parsing: Array(bytes.prefix(8))) }
        #expect(throws: KeystoreError.truncated) { try KeystoreFile(parsing: Array(bytes.prefix(63))) }
        #expect(throws: KeystoreError.truncated) { try KeystoreFile(parsing: Array(bytes.dropLast())) }
        #expect(throws: KeystoreError.truncated) { try KeystoreFile(parsing: []) }
        #expect(throws: KeystoreError.notAKeystore) { try KeystoreFile(parsing: Array("VALIX".utf8)) }
    }

    @Test("any flipped bit is caught by the checksum")
    func corruption() throws {
        let bytes = try sealed()
        for index in stride(from: 8, to: bytes.count, by: 1) where index != 8 {
            #expect(throws: KeystoreError.self) { try KeystoreFile(parsing: flipped(bytes, at: index)) }
        }
        #expect(throws: KeystoreError.corrupted) { try KeystoreFile(parsing: flipped(bytes, at: 70)) }
        #expect(throws: KeystoreError.corrupted) { try KeystoreFile(parsing: bytes + [0]) }
        #expect(throws: KeystoreError.notAKeystore) { try KeystoreFile(parsing: flipped(bytes, at: 0)) }
        #expect(throws: KeystoreError.unsupportedVersion(2)) { try KeystoreFile(parsing: flipped(bytes, at: 8)) }
    }

    @Test("a deliberate change with a recomputed checksum still fails: the header is authenticated")
    func authenticatedHeader() throws {
        let bytes = try sealed()
        // Ciphertext changed.
        let file = try KeystoreFile(parsing: withValidChecksum(flipped(bytes, at: 64)))
        #expect(throws: KeystoreError.wrongPassphrase) { try file.open(passphrase: passphrase, expecting: .device) }
        // Contents byte changed from device (1) to admin (2): the AEAD refuses it.
        var relabelled = bytes
        relabelled[9] = 2
        let admin = try KeystoreFile(parsing: withValidChecksum(relabelled))
        #expect(throws: KeystoreError.wrongPassphrase) { try admin.open(passphrase: passphrase, expecting: .admin) }
        #expect(throws: KeystoreError.wrongContents(expected: "", found: "")) { try admin.open(passphrase: passphrase, expecting: .device) }
    }

    @Test("unknown algorithms and parameters out of range are refused without running Argon2id")
    func parameterChecks() throws {
        let bytes = try sealed()
        var unknownAlgorithm = bytes
        unknownAlgorithm[10] = 2
        #expect(throws: KeystoreError.unsupportedParameters("")) { try KeystoreFile(parsing: withValidChecksum(unknownAlgorithm)) }
        var unknownProfile = bytes
        unknownProfile[11] = 9
        #expect(throws: KeystoreError.unsupportedParameters("")) { try KeystoreFile(parsing: withValidChecksum(unknownProfile)) }
        var hugeMemory = bytes
        hugeMemory[16] = 0xff
        #expect(throws: KeystoreError.unsupportedParameters("")) { try KeystoreFile(parsing: withValidChecksum(hugeMemory)) }
        var manyIterations = bytes
        manyIterations[14] = 0x10
        #expect(throws: KeystoreError.unsupportedParameters("")) { try KeystoreFile(parsing: withValidChecksum(manyIterations)) }
        // A ciphertext length that no valid file can have, one longer than the file, one shorter.
        var impossibleLength = bytes
        impossibleLength[60] = 0xff
        #expect(throws: KeystoreError.corrupted) { try KeystoreFile(parsing: withValidChecksum(impossibleLength)) }
        var longerLength = bytes
        longerLength[63] &+= 1
        #expect(throws: KeystoreError.truncated) { try KeystoreFile(parsing: withValidChecksum(longerLength)) }
        var shorterLength = bytes
        shorterLength[63] &-= 1
        #expect(throws: KeystoreError.corrupted) { try KeystoreFile(parsing: withValidChecksum(shorterLength)) }
    }

    @Test("the standard label is refused for parameters weaker than the standard")
    func mislabelledParameters() {
        let weak = PasswordKDFParameters(profile: .standard, iterations: 1, memoryKiB: 8)
        #expect(throws: KeystoreError.unsupportedParameters("")) {
            try KeystoreFile.seal(payload, contents: .device, passphrase: passphrase, parameters: weak)
        }
    }

    @Test("oversized files and payloads are refused")
    func sizes() throws {
        #expect(throws: KeystoreError.tooLarge) { try KeystoreFile(parsing: [UInt8](repeating: 0, count: 65_537)) }
        #expect(throws: KeystoreError.tooLarge) {
            try KeystoreFile.seal(
                SecretBytes(zeroes: KeystoreFile.maximumPayloadByteCount + 1), contents: .device,
                passphrase: passphrase, parameters: .insecureTest)
        }
    }
}

/// A device keystore written by scripts/interop/keystore.py from docs/PROTOCOL.md alone
/// (Fixtures/keystore_v1_device.json): the format is what the document says, and stays so.
@Suite("Keystore written by an independent implementation")
struct KeystoreInteropTests {
    @Test("opens, and holds the documented payload")
    func independentFile() throws {
        let fixture = try #require(Fixture.object("keystore_v1_device"))
        let file = try KeystoreFile(parsing: hexDecode(fixture["file_hex"]!)!)
        #expect(file.contents == .device)
        #expect(file.parameters == .insecureTest)
        let payload = try file.open(passphrase: SecretBytes(copying: Array(fixture["passphrase"]!.utf8)), expecting: .device)

        try payload.withUnsafeBytes { raw in
            var reader = ByteReader(raw, context: "payload")
            #expect(try reader.readUInt8() == 1)
            let name = try reader.readString(maximumByteCount: 129, field: "name")
            #expect(name == fixture["member"])
            #expect(try reader.readUInt64() == UInt64(fixture["created_at"]!))
            let identity = try SigningKey(seed: reader.readSecret(32))
            #expect(Hex.encode(identity.publicKey.bytes) == fixture["identity_public_key"])
            let transport = try AgreementPrivateKey(rawRepresentation: reader.readSecret(32))
            #expect(Hex.encode(transport.publicKey.bytes) == fixture["transport_public_key"])
            try reader.expectEnd()
            #expect(Fingerprint(identityKey: identity.publicKey, memberName: name).description == fixture["fingerprint"])
        }
    }
}
