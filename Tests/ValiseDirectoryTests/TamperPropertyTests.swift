import PropertyBased
import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// A pinned client must never accept a log that differs from the organisation's by a single
/// byte: every change is either malformed (FormatError) or breaks a rule (DirectoryError).
@Suite("Tampering with a valid log is always detected")
struct TamperPropertyTests {
    /// Every kind of entry, from a 2-of-3 genesis (see `DirectoryFixture.mixedLog`).
    static let fixture = DirectoryFixture.mixedLog()
    static let logFile = DirectoryFiles.encodeLog(fixture.entries)
    static let encodedEntries = fixture.entries.map { $0.encoded() }

    enum Outcome: Equatable {
        case malformed
        case refused(String)
        case accepted
    }

    /// Decodes `bytes` as a log file and verifies it against the pinned genesis.
    static func outcome(ofLogFile bytes: [UInt8], pinnedGenesis: EntryHash = fixture.genesisHash, now: UInt64 = fixture.now) -> Outcome {
        let entries: [DirectoryEntry]
        do {
            entries = try DirectoryFiles.decodeLog(bytes)
        } catch {
            return .malformed
        }
        return outcome(of: entries, pinnedGenesis: pinnedGenesis, now: now)
    }

    static func outcome(of entries: [DirectoryEntry], pinnedGenesis: EntryHash = fixture.genesisHash, now: UInt64 = fixture.now) -> Outcome {
        do {
            _ = try DirectoryVerifier.verify(entries, pinnedGenesis: pinnedGenesis, now: now)
            return .accepted
        } catch {
            return .refused(error.code)
        }
    }

    @Test("the untouched log file and every entry are accepted")
    func untouched() throws {
        #expect(Self.outcome(ofLogFile: Self.logFile) == .accepted)
        let entries = try Self.encodedEntries.map { try DirectoryEntry(decoding: $0) }
        #expect(Self.outcome(of: entries) == .accepted)
        #expect(Set(Self.fixture.entries.map(\.body.kind)) == Set(EntryBody.Kind.allCases))
    }

    @Test("a log file with one byte changed is never accepted")
    func logFileByteChange() async {
        let file = Self.logFile
        await propertyCheck(count: 600, input: Gen.int(in: 0...(file.count - 1)), Gen.uint8(in: 1...255)) { index, mask in
            let outcome = Self.outcome(ofLogFile: flipping(file, at: index, mask: mask))
            #expect(outcome != .accepted, "byte \(index) of \(file.count) XOR \(mask)")
        }
    }

    @Test("a log with one byte changed in one entry is never accepted")
    func entryByteChange() async {
        let entries = Self.fixture.entries
        let encoded = Self.encodedEntries
        await propertyCheck(
            count: 600, input: Gen.int(in: 0...(entries.count - 1)), Gen.int(in: 0...Int(UInt16.max)), Gen.uint8(in: 1...255)
        ) { which, position, mask in
            let index = position % encoded[which].count
            let changed: DirectoryEntry
            do {
                changed = try DirectoryEntry(decoding: flipping(encoded[which], at: index, mask: mask))
            } catch {
                return
            }
            var log = entries
            log[which] = changed
            #expect(Self.outcome(of: log) != .accepted, "entry \(which), byte \(index) XOR \(mask)")
        }
    }

    @Test("exhaustive: a 3-entry log file with any one bit changed is never accepted")
    func exhaustiveSmallLog() {
        let fixture = DirectoryFixture.smallLog()
        let file = DirectoryFiles.encodeLog(fixture.entries)
        #expect(Self.outcome(ofLogFile: file, pinnedGenesis: fixture.genesisHash, now: fixture.now) == .accepted)
        var outcomes: [Outcome: Int] = [:]
        for index in file.indices {
            // A different bit at each position covers all eight across neighbouring bytes.
            let mask = UInt8(1) << (index % 8)
            let outcome = Self.outcome(ofLogFile: flipping(file, at: index, mask: mask), pinnedGenesis: fixture.genesisHash, now: fixture.now)
            #expect(outcome != .accepted, "byte \(index) XOR \(mask)")
            outcomes[outcome, default: 0] += 1
        }
        // Both layers catch something: the decoder and the verifier's rules.
        #expect(outcomes[.malformed, default: 0] > 0)
        #expect(outcomes.keys.contains { if case .refused = $0 { true } else { false } })
    }

    @Test("a changed genesis is another organisation to a pinned client, and unsigned to any client")
    func changedGenesis() throws {
        // The organisation name starts after the log header (13), the entry length (4), the
        // entry header (54) and the name's length (2); "Ministry" becomes "ministry".
        let nameByte = 13 + 4 + 54 + 2
        let changed = flipping(Self.logFile, at: nameByte, mask: 0x20)
        #expect(Self.outcome(ofLogFile: changed) == .refused("genesis-pin"))
        let entries = try DirectoryFiles.decodeLog(changed)
        #expect(entries[0].hash != Self.fixture.genesisHash)
        let error = #expect(throws: DirectoryError.self) {
            try DirectoryVerifier.verify(entries, pinnedGenesis: nil, now: Self.fixture.now)
        }
        #expect(error?.code == "signature")
        #expect(error?.sequence == 0)
    }
}

extension TamperPropertyTests.Outcome: Hashable {}
