import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Verifier: rollback and fork")
struct RollbackAndForkTests {
    let fixture = DirectoryFixture.mixedLog()

    func verifier(upTo count: Int) throws -> DirectoryVerifier {
        try DirectoryVerifier.verify(Array(fixture.entries.prefix(count)), pinnedGenesis: fixture.genesisHash, now: fixture.now)
    }

    @Test("a log shorter than the verified one is a rollback")
    func rollback() throws {
        var verifier = try verifier(upTo: 8)
        let before = VerifierSnapshot(verifier)
        for length in [1, 5, 7] {
            let error = #expect(throws: DirectoryError.self) {
                try verifier.extend(with: Array(fixture.entries.prefix(length)), now: fixture.now)
            }
            #expect(error?.code == "rollback")
            #expect(error?.sequence == UInt64(length - 1))
            #expect(error?.message.contains("entry \(length - 1)") == true)
            #expect(error?.message.contains("up to 7") == true)
        }
        #expect(VerifierSnapshot(verifier) == before)
    }

    @Test("the same log again, or nothing, changes nothing")
    func sameLog() throws {
        var verifier = try verifier(upTo: 8)
        let before = VerifierSnapshot(verifier)
        try verifier.extend(with: Array(fixture.entries.prefix(8)), now: fixture.now)
        try verifier.extend(with: [], now: fixture.now)
        #expect(VerifierSnapshot(verifier) == before)
    }

    @Test("overlapping identical entries are accepted and the new ones appended")
    func overlap() throws {
        var verifier = try verifier(upTo: 5)
        try verifier.extend(with: Array(fixture.entries[2...]), now: fixture.now)
        #expect(verifier.count == fixture.entries.count)
        #expect(VerifierSnapshot(verifier) == VerifierSnapshot(try fixture.verifier()))
    }

    @Test("an overlapping entry with an extra co-signature is the same entry")
    func overlapWithLateSignature() throws {
        var verifier = try verifier(upTo: 5)
        let cosigned = fixture.entries[4].signed(by: fixture.admins[2].signingKey)
        #expect(cosigned.hash == fixture.entries[4].hash)
        #expect(cosigned != fixture.entries[4])
        try verifier.extend(with: [cosigned] + fixture.entries[5...], now: fixture.now)
        #expect(verifier.count == fixture.entries.count)
    }

    @Test("a different entry at a verified sequence number is a FORK, wherever it is in the batch")
    func fork() throws {
        var verifier = try verifier(upTo: 6)
        let before = VerifierSnapshot(verifier)
        var other = DirectoryFixture(adminCount: 3, threshold: 2, randomKeys: true)
        for _ in 1..<4 {
            let device = other.enroll("someone@else")
            other.append(DirectoryFixture.revoke(device.member))
        }
        // Another organisation's genesis, a differently dated copy of entry 3, and another
        // organisation's entry 5.
        let redated = DirectoryFixture.sign(
            DirectoryEntry(
                sequence: 3, previousHash: fixture.entries[2].hash, timestamp: fixture.entries[3].timestamp + 1,
                body: fixture.entries[3].body),
            by: fixture.admins)
        let batches: [[DirectoryEntry]] = [
            [other.genesis] + fixture.entries[1...],
            Array(fixture.entries[0..<3]) + [redated] + fixture.entries[4...],
            Array(fixture.entries[0..<5]) + [other.entries[5]],
        ]
        for batch in batches {
            let error = #expect(throws: DirectoryError.self) { try verifier.extend(with: batch, now: fixture.now) }
            #expect(error?.code == "fork")
            #expect(error?.message.contains("FORK") == true)
            let sequence = try #require(error?.sequence)
            #expect(error?.message.contains("entry \(sequence)") == true)
            #expect(VerifierSnapshot(verifier) == before)
        }
    }

    @Test("a new entry that fails in a batch is reported with its own rule")
    func failureAfterOverlap() throws {
        var verifier = try verifier(upTo: 4)
        let unsigned = DirectoryEntry(
            sequence: 4, previousHash: fixture.entries[3].hash, timestamp: fixture.entries[4].timestamp,
            body: fixture.entries[4].body)
        let error = #expect(throws: DirectoryError.self) {
            try verifier.extend(with: Array(fixture.entries[0..<4]) + [unsigned], now: fixture.now)
        }
        #expect(error?.code == "threshold")
        #expect(error?.sequence == 4)
    }

    @Test("an entry claiming the largest sequence number is out of sequence (no overflow)")
    func largestSequence() throws {
        let entry = DirectoryFixture.sign(
            DirectoryEntry(sequence: .max, previousHash: .zero, timestamp: DirectoryFixture.epoch, body: fixture.genesis.body),
            by: fixture.admins)
        let decoded = try DirectoryEntry(decoding: entry.encoded())
        let error = #expect(throws: DirectoryError.self) {
            try DirectoryVerifier.verify([decoded], pinnedGenesis: nil, now: fixture.now)
        }
        #expect(error?.code == "sequence")
        #expect(error?.message.contains("entry \(UInt64.max)") == true)
    }

    @Test("a batch with a gap or a repeated entry is out of sequence, before anything is applied")
    func nonConsecutiveBatch() throws {
        var verifier = try verifier(upTo: 3)
        let before = VerifierSnapshot(verifier)
        let entries = fixture.entries
        let batches: [[DirectoryEntry]] = [
            [entries[3], entries[5]],
            [entries[3], entries[4], entries[4]],
            Array(entries[0..<3]) + [entries[4]],
            [entries[4], entries[3]],
        ]
        for batch in batches {
            let error = #expect(throws: DirectoryError.self) { try verifier.extend(with: batch, now: fixture.now) }
            #expect(error?.code == "sequence")
            #expect(VerifierSnapshot(verifier) == before)
        }
    }
}
