import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// Regression tests for crafted files found in review: each must be refused with an error,
/// never crash.
@Suite("Hostile directory files")
struct HostileFileTests {
    let admin = SigningKey()

    func genesis() -> DirectoryEntry {
        let record = AdminRecord(name: "admin", signingKey: admin.publicKey, transportKey: AgreementPrivateKey().publicKey)
        return DirectoryEntry(
            sequence: 0, previousHash: .zero, timestamp: 1_000,
            body: .genesis(Genesis(organisation: "Ministry", admins: AdminSet(admins: [record], threshold: 1), freshness: .standard))
        ).signed(by: admin)
    }

    @Test("an entry claiming sequence 2^64-1 is refused, in a file and in a batch")
    func maximumSequence() throws {
        let first = genesis()
        let last = DirectoryEntry(
            sequence: .max, previousHash: first.hash, timestamp: 1_000, body: .removeRelay(name: "hq")
        ).signed(by: admin)
        #expect(throws: FormatError.self) { try DirectoryFiles.decodeLog(DirectoryFiles.encodeLog([first, last])) }

        var verifier = DirectoryVerifier(pinnedGenesis: nil)
        try verifier.append(first, now: 2_000)
        let error = #expect(throws: DirectoryError.self) { try verifier.extend(with: [last], now: 2_000) }
        #expect(error?.code == "sequence")
        #expect(verifier.count == 1)
    }

    @Test("an empty log is refused: it has no genesis")
    func emptyLog() {
        #expect(throws: FormatError.self) { try DirectoryFiles.decodeLog(DirectoryFiles.encodeLog([])) }
        let error = #expect(throws: DirectoryError.self) { try DirectoryVerifier.verify([], pinnedGenesis: nil, now: 0) }
        #expect(error?.code == "genesis")
    }

    @Test("a count larger than the file could hold is refused before allocating")
    func lyingCount() {
        var bytes = DirectoryFiles.encodeLog([genesis()])
        bytes[9...12] = [0x7f, 0xff, 0xff, 0xff]
        #expect(throws: FormatError.self) { try DirectoryFiles.decodeLog(bytes) }
    }
}
