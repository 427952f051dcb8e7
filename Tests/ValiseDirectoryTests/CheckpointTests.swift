import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Checkpoints")
struct CheckpointTests {
    /// Two checkpoint keys: the first certified at entry 2, the second at entry 5.
    let fixture: DirectoryFixture
    let firstKey: SigningKey
    let secondKey: SigningKey
    let verifier: DirectoryVerifier

    init() throws {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        fixture.enroll("amara@jakarta")
        firstKey = fixture.newCheckpointKey()
        fixture.append(DirectoryFixture.certify(firstKey))
        fixture.enroll("bo@nairobi")
        fixture.enroll("chidi@lagos")
        secondKey = fixture.newCheckpointKey()
        fixture.append(DirectoryFixture.certify(secondKey))
        fixture.enroll("dara@dakar")
        self.fixture = fixture
        verifier = try fixture.verifier()
    }

    func checkpoint(at sequence: Int, by key: SigningKey, hash: EntryHash? = nil, time: UInt64? = nil) -> Checkpoint {
        Checkpoint(
            sequence: UInt64(sequence), headHash: hash ?? fixture.entries[sequence].hash, time: time ?? fixture.now, signingKey: key)
    }

    func verify(_ checkpoint: Checkpoint) throws(DirectoryError) {
        try checkpoint.verify(against: verifier, now: fixture.now)
    }

    @discardableResult
    func expectRefused(
        _ checkpoint: Checkpoint, rule: DirectoryError.Rule, namingEntry: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
    ) -> DirectoryError? {
        let error = #expect(throws: DirectoryError.self, sourceLocation: sourceLocation) { try verify(checkpoint) }
        #expect(error?.code == rule.rawValue, "\(error?.message ?? "")", sourceLocation: sourceLocation)
        if namingEntry {
            #expect(error?.message.contains("entry \(checkpoint.sequence)") == true, "\(error?.message ?? "")", sourceLocation: sourceLocation)
        }
        return error
    }

    @Test("a checkpoint of the head by the key in force is valid")
    func valid() throws {
        try verify(checkpoint(at: 6, by: secondKey))
        try verify(checkpoint(at: 5, by: secondKey))
    }

    @Test("a checkpoint signed by a key that is not certified is refused")
    func uncertifiedKey() {
        expectRefused(checkpoint(at: 6, by: TestKeys.signing("timer on the relay")), rule: .checkpoint)
        expectRefused(checkpoint(at: 6, by: fixture.admins[0].signingKey), rule: .checkpoint)
    }

    @Test("before any key is certified, no checkpoint is valid")
    func beforeAnyKey() {
        expectRefused(checkpoint(at: 1, by: firstKey), rule: .checkpoint)
        expectRefused(checkpoint(at: 0, by: secondKey), rule: .checkpoint)
    }

    @Test("once a newer checkpoint key is certified, the old key's checkpoints are refused, whatever their sequence")
    func replacedKeyLosesItsPower() throws {
        // A compromised old key signs a fresh checkpoint for an old sequence (a relay that
        // withholds the newer certification would serve it): it must not count.
        expectRefused(checkpoint(at: 2, by: firstKey), rule: .checkpoint)
        expectRefused(checkpoint(at: 4, by: firstKey), rule: .checkpoint)
        expectRefused(checkpoint(at: 5, by: firstKey), rule: .checkpoint)
        expectRefused(checkpoint(at: 6, by: firstKey), rule: .checkpoint)
        // The newest key vouches only for entries from its own certification on.
        expectRefused(checkpoint(at: 4, by: secondKey), rule: .checkpoint)
        try verify(checkpoint(at: 5, by: secondKey))
        // A verifier that has not seen the replacement still takes the old key's checkpoints.
        let before = try DirectoryVerifier.verify(Array(fixture.entries.prefix(5)), pinnedGenesis: fixture.genesisHash, now: fixture.now)
        try checkpoint(at: 4, by: firstKey).verify(against: before, now: fixture.now)
    }

    @Test("a checkpoint ahead of the log asks for the newer entries")
    func aheadOfTheLog() {
        let ahead = Checkpoint(sequence: 7, headHash: fixture.head.hash, time: fixture.now, signingKey: secondKey)
        let error = expectRefused(ahead, rule: .checkpoint)
        #expect(error?.message.contains("fetch the newer entries") == true)
        let empty = #expect(throws: DirectoryError.self) { try ahead.verify(against: DirectoryVerifier(pinnedGenesis: nil), now: fixture.now) }
        #expect(empty?.code == "checkpoint")
    }

    @Test("a checkpoint by the certified key naming another head hash is a fork")
    func fork() {
        for sequence in [5, 6] {
            let forked = checkpoint(at: sequence, by: secondKey, hash: fixture.entries[1].hash)
            let error = expectRefused(forked, rule: .fork)
            #expect(error?.message.contains("FORK") == true)
        }
    }

    @Test("a checkpoint whose signature does not verify is refused, before any hash is compared")
    func invalidSignature() throws {
        let good = checkpoint(at: 6, by: secondKey).fileBytes()
        // In a checkpoint file: magic and version (9), version (1), sequence (8), head hash
        // (32), time (8), key (32), signature (64).
        let hashOffset = 9 + 1 + 8
        let timeOffset = hashOffset + 32
        for index in [hashOffset, hashOffset + 31, timeOffset + 7, good.count - 1, good.count - 40] {
            let tampered = try Checkpoint(fileBytes: flipping(good, at: index))
            let error = expectRefused(tampered, rule: .checkpoint, namingEntry: false)
            #expect(error?.message.contains("signature does not verify") == true)
        }
    }

    @Test("a checkpoint by an uncertified key naming another head hash is refused, not reported as a fork")
    func forgedForkIsNotAFork() {
        // Anyone (a relay) can make such a checkpoint: it must not raise a FORK alarm.
        let forged = checkpoint(at: 6, by: TestKeys.signing("relay's own key"), hash: fixture.entries[1].hash)
        expectRefused(forged, rule: .checkpoint)
    }

    @Test("a checkpoint is dated no earlier than its entry, and at most maximumClockSkew ahead of the clock")
    func checkpointTime() throws {
        let entryTime = fixture.entries[6].timestamp
        expectRefused(checkpoint(at: 6, by: secondKey, time: entryTime - 1), rule: .checkpoint, namingEntry: false)
        try verify(checkpoint(at: 6, by: secondKey, time: entryTime))
        let limit = fixture.now + DirectoryVerifier.maximumClockSkew
        expectRefused(checkpoint(at: 6, by: secondKey, time: limit + 1), rule: .checkpoint, namingEntry: false)
        try verify(checkpoint(at: 6, by: secondKey, time: limit))
    }
}
