import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// An admin set that breaks a rule, and admins of it who can sign a genesis of it.
struct InvalidAdminSet: Sendable, CustomTestStringConvertible {
    let testDescription: String
    let records: [AdminRecord]
    let threshold: UInt8
    let signers: [TestAdmin]
}

@Suite("Verifier: admin sets")
struct VerifierAdminSetTests {
    static let admins = (0..<4).map { TestAdmin(DirectoryFixture.adminName($0)) }

    static let invalidSets: [InvalidAdminSet] = {
        let records = admins.map(\.record)
        let signers = Array(admins.prefix(2))
        let zoe = TestAdmin("zoe").record
        let sameSigning = AdminRecord(name: "zoe", signingKey: records[0].signingKey, transportKey: zoe.transportKey)
        let sameTransport = AdminRecord(name: "zoe", signingKey: zoe.signingKey, transportKey: records[0].transportKey)
        let sameName = AdminRecord(name: records[0].name, signingKey: zoe.signingKey, transportKey: zoe.transportKey)
        let many = (0..<33).map { TestAdmin("admin-\($0)") }
        return [
            InvalidAdminSet(testDescription: "threshold 0", records: records, threshold: 0, signers: signers),
            InvalidAdminSet(testDescription: "threshold above the number of admins", records: records, threshold: 5, signers: signers),
            InvalidAdminSet(testDescription: "no admins", records: [], threshold: 1, signers: []),
            InvalidAdminSet(testDescription: "a signing key twice", records: records + [sameSigning], threshold: 2, signers: signers),
            InvalidAdminSet(testDescription: "a transport key twice", records: records + [sameTransport], threshold: 2, signers: signers),
            InvalidAdminSet(testDescription: "a name twice", records: records + [sameName], threshold: 2, signers: signers),
            InvalidAdminSet(testDescription: "33 admins", records: many.map(\.record), threshold: 2, signers: Array(many.prefix(2))),
        ]
    }()

    @Test("a genesis with an invalid admin set is refused", arguments: invalidSets)
    func invalidGenesis(_ set: InvalidAdminSet) {
        let genesis = Genesis(
            organisation: DirectoryFixture.organisation, admins: AdminSet(admins: set.records, threshold: set.threshold),
            freshness: .standard)
        let entry = DirectoryFixture.sign(
            DirectoryEntry(sequence: 0, previousHash: .zero, timestamp: DirectoryFixture.epoch, body: .genesis(genesis)),
            by: set.signers)
        expectRefused(entry, by: DirectoryVerifier(pinnedGenesis: nil), rule: .admins)
    }

    @Test("a change to an invalid admin set is refused", arguments: invalidSets)
    func invalidChange(_ set: InvalidAdminSet) throws {
        let fixture = DirectoryFixture(admins: Array(Self.admins.prefix(3)), threshold: 2)
        let entry = fixture.next(.changeAdmins(AdminSet(admins: set.records, threshold: set.threshold)))
        expectRefused(entry, by: try fixture.verifier(), rule: .admins)
    }

    @Test("a set of no admins or of more than 32 does not even decode")
    func sizeCheckedWhenDecoding() {
        for set in Self.invalidSets where set.records.isEmpty || set.records.count > AdminSet.maximumAdmins {
            let fixture = DirectoryFixture(admins: Array(Self.admins.prefix(3)), threshold: 2)
            let entry = fixture.next(.changeAdmins(AdminSet(admins: set.records, threshold: set.threshold)))
            #expect(throws: FormatError.self, "\(set.testDescription)") { try DirectoryEntry(decoding: entry.encoded()) }
        }
    }

    @Test("32 admins with a threshold of 32 is a valid set")
    func largestSet() throws {
        let admins = (0..<32).map { TestAdmin("admin-\($0)") }
        let fixture = DirectoryFixture(admins: admins, threshold: 32)
        let verifier = try fixture.verifier()
        #expect(verifier.state?.admins.admins.count == 32)
        let decoded = try DirectoryEntry(decoding: fixture.genesis.encoded())
        #expect(decoded == fixture.genesis)
    }
}
