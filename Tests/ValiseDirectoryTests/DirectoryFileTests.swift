import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Directory files: log, bundle, pending entry")
struct DirectoryFileTests {
    static let fixture = DirectoryFixture.mixedLog()

    @Test("a log file round-trips and verifies")
    func logRoundTrip() throws {
        let bytes = DirectoryFiles.encodeLog(Self.fixture.entries)
        #expect(bytes.starts(with: Array("VALISEDL".utf8) + [1]))
        let entries = try DirectoryFiles.decodeLog(bytes)
        #expect(entries == Self.fixture.entries)
        let verifier = try DirectoryVerifier.verify(entries, pinnedGenesis: Self.fixture.genesisHash, now: Self.fixture.now)
        #expect(verifier.count == Self.fixture.entries.count)
    }

    @Test("a log file with another magic, version, count or trailing bytes is refused")
    func logFraming() {
        let bytes = DirectoryFiles.encodeLog(Self.fixture.entries)
        #expect(throws: FormatError.self) { try DirectoryFiles.decodeLog(flipping(bytes, at: 0)) }
        #expect(throws: FormatError.unsupportedVersion("", 2)) { try DirectoryFiles.decodeLog(flipping(bytes, at: 8, mask: 3)) }
        #expect(throws: FormatError.trailingBytes("")) { try DirectoryFiles.decodeLog(bytes + [0]) }
        // A count of one entry more than the file holds (17), or one fewer (15).
        #expect(bytes[12] == 16)
        #expect(throws: FormatError.truncated("")) { try DirectoryFiles.decodeLog(flipping(bytes, at: 12, mask: 0x10 ^ 0x11)) }
        #expect(throws: FormatError.trailingBytes("")) { try DirectoryFiles.decodeLog(flipping(bytes, at: 12, mask: 0x10 ^ 0x0f)) }
        // A count no file of this size can hold is refused before anything is allocated.
        var huge = bytes
        huge.replaceSubrange(9..<13, with: [0x00, 0x98, 0x96, 0x80])
        #expect(throws: FormatError.self) { try DirectoryFiles.decodeLog(huge) }
        // An entry length that does not match the entry.
        #expect(throws: FormatError.self) { try DirectoryFiles.decodeLog(flipping(bytes, at: 16)) }
        // Another file kind.
        #expect(throws: FormatError.self) { try DirectoryFiles.decodeLog(DirectoryFiles.encodePending(Self.fixture.head)) }
    }

    @Test("a bundle round-trips, with or without a checkpoint")
    func bundleRoundTrip() throws {
        let key = TestKeys.signing("bundle checkpoint")
        let checkpoint = Checkpoint(sequence: 3, headHash: Self.fixture.entries[3].hash, time: Self.fixture.now, signingKey: key)
        for checkpoint in [nil, checkpoint] {
            let bundle = OrganisationBundle(entries: Self.fixture.entries, checkpoint: checkpoint)
            #expect(bundle.genesisHash == Self.fixture.genesisHash)
            let decoded = try OrganisationBundle(decoding: bundle.encoded())
            #expect(decoded.genesisHash == bundle.genesisHash)
            #expect(decoded.entries == bundle.entries)
            #expect(decoded.checkpoint == checkpoint)
        }
    }

    @Test("a bundle whose genesis hash is not its first entry's is refused")
    func bundleGenesisMismatch() throws {
        let bytes = OrganisationBundle(entries: Self.fixture.entries, checkpoint: nil).encoded()
        for index in [9, 9 + 31] {
            let error = #expect(throws: FormatError.self) { try OrganisationBundle(decoding: flipping(bytes, at: index)) }
            #expect(error?.message.contains("genesis hash does not match") == true)
        }
        // A bundle cut to entries that do not start with the genesis is no bundle either.
        var empty = Array(bytes.prefix(9 + 32))
        empty += [0, 0, 0, 0, 0]
        #expect(throws: FormatError.self) { try OrganisationBundle(decoding: empty) }
        #expect(throws: FormatError.self) { try OrganisationBundle(decoding: flipping(bytes, at: bytes.count - 1, mask: 2)) }
        #expect(throws: FormatError.trailingBytes("")) { try OrganisationBundle(decoding: bytes + [0]) }
    }

    @Test("a pending entry keeps its partial signatures")
    func pendingRoundTrip() throws {
        let fixture = Self.fixture
        let proposed = fixture.next(DirectoryFixture.removeRelay("relay-9"), signedBy: [fixture.admins[1]])
        let bytes = DirectoryFiles.encodePending(proposed)
        #expect(bytes.starts(with: Array("VALISEPE".utf8) + [1]))
        let decoded = try DirectoryFiles.decodePending(bytes)
        #expect(decoded == proposed)
        #expect(decoded.signatures.count == 1)
        let cosigned = try DirectoryFiles.decodePending(DirectoryFiles.encodePending(decoded.signed(by: fixture.admins[0].signingKey)))
        #expect(cosigned.hash == proposed.hash)
        #expect(cosigned.signatures.count == 2)
        #expect(throws: FormatError.trailingBytes("")) { try DirectoryFiles.decodePending(bytes + [7]) }
        #expect(throws: FormatError.self) { try DirectoryFiles.decodePending(DirectoryFiles.encodeLog([proposed])) }
    }
}
