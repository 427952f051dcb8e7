import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// Every format the directory reads, with a valid sample of each.
enum DirectoryFormat: String, Codable, CaseIterable, Sendable {
    case entry, log, bundle, pending, adminKeyFile, relayKeyFile, enrollmentRequest, rotationRequest, checkpointFile

    var sample: [UInt8] {
        let fixture = DirectoryFixture.smallLog()
        switch self {
        case .entry: return fixture.entries[1].encoded()
        case .log: return DirectoryFiles.encodeLog(fixture.entries)
        case .bundle:
            let checkpoint = Checkpoint(sequence: 1, headHash: fixture.entries[1].hash, time: fixture.now, signingKey: TestKeys.signing("cp"))
            return OrganisationBundle(entries: fixture.entries, checkpoint: checkpoint).encoded()
        case .pending: return DirectoryFiles.encodePending(fixture.head)
        case .adminKeyFile: return PublicFileTests.adminFile.fileBytes()
        case .relayKeyFile: return PublicFileTests.relay.publicFile.fileBytes()
        case .enrollmentRequest: return PublicFileTests.requests[0].fileBytes()
        case .rotationRequest: return PublicFileTests.requests[1].fileBytes()
        case .checkpointFile:
            return Checkpoint(sequence: 2, headHash: fixture.head.hash, time: fixture.now, signingKey: TestKeys.signing("cp")).fileBytes()
        }
    }

    /// How many leading bytes come before the first signature or X25519 key (magic, version,
    /// counts, lengths, the entry header, names, Ed25519 keys).
    func decode(_ bytes: [UInt8]) throws(FormatError) {
        switch self {
        case .entry: _ = try DirectoryEntry(decoding: bytes)
        case .log: _ = try DirectoryFiles.decodeLog(bytes)
        case .bundle: _ = try OrganisationBundle(decoding: bytes)
        case .pending: _ = try DirectoryFiles.decodePending(bytes)
        case .adminKeyFile: _ = try AdminPublicFile(fileBytes: bytes)
        case .relayKeyFile: _ = try RelayPublicFile(fileBytes: bytes)
        case .enrollmentRequest, .rotationRequest: _ = try MemberRequest(fileBytes: bytes)
        case .checkpointFile: _ = try Checkpoint(fileBytes: bytes)
        }
    }
}

@Suite("Truncated input")
struct TruncationTests {
    @Test("every sample decodes whole", arguments: DirectoryFormat.allCases)
    func samplesDecode(_ format: DirectoryFormat) throws {
        try format.decode(format.sample)
    }

    @Test("every truncation is refused with a FormatError, never a crash", arguments: DirectoryFormat.allCases)
    func everyTruncation(_ format: DirectoryFormat) {
        let bytes = format.sample
        for length in 0..<bytes.count {
            #expect(throws: FormatError.self, "\(format) cut to \(length) of \(bytes.count) bytes") {
                try format.decode(Array(bytes.prefix(length)))
            }
        }
    }

    @Test("every truncation of every kind of entry is refused")
    func everyEntryTruncation() {
        for entry in DirectoryFixture.mixedLog().entries {
            let bytes = entry.encoded()
            for length in 0..<bytes.count {
                #expect(throws: FormatError.self, "entry \(entry.sequence) cut to \(length) bytes") {
                    try DirectoryEntry(decoding: Array(bytes.prefix(length)))
                }
            }
        }
    }

    @Test("regression inputs: an entry missing its last byte, a relay key file cut after its header")
    func regressionInputs() {
        // Both trapped while `readSignature` and `readAgreementPublicKey` wrapped the read in `try!`.
        let entry = DirectoryFixture.smallLog().entries[1].encoded()
        #expect(throws: FormatError.truncated("")) { try DirectoryEntry(decoding: Array(entry.dropLast())) }
        #expect(throws: FormatError.truncated("")) { try RelayPublicFile(fileBytes: Array("VALISERP".utf8) + [1, 0]) }
    }
}
