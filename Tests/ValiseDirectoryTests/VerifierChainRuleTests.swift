import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Verifier: genesis, sequence, chain and time")
struct VerifierChainRuleTests {
    let fixture: DirectoryFixture = {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        fixture.enroll("amara@jakarta")
        fixture.enroll("bo@nairobi")
        return fixture
    }()

    @Test("a log that verifies has the state its entries describe")
    func validLog() throws {
        let verifier = try fixture.verifier()
        #expect(verifier.count == 3)
        #expect(verifier.hashes == fixture.entries.map(\.hash))
        let state = try #require(verifier.state)
        #expect(state.genesisHash == fixture.genesisHash)
        #expect(state.headHash == fixture.head.hash)
        #expect(state.headSequence == 2)
        #expect(state.organisation == DirectoryFixture.organisation)
        #expect(state.activeMembers.map(\.name.value) == ["amara@jakarta", "bo@nairobi"])
    }

    @Test("the first entry must be a genesis")
    func firstEntryNotGenesis() {
        let device = TestDevice("amara@jakarta", label: "first")
        let entry = DirectoryFixture.sign(
            DirectoryEntry(sequence: 0, previousHash: .zero, timestamp: DirectoryFixture.epoch, body: fixture.enrollment(device)),
            by: fixture.admins)
        expectRefused(entry, by: DirectoryVerifier(pinnedGenesis: nil), rule: .genesis)
    }

    @Test("a genesis must be entry 0")
    func genesisNotAtZero() {
        let entry = DirectoryFixture.sign(
            DirectoryEntry(sequence: 1, previousHash: .zero, timestamp: DirectoryFixture.epoch, body: fixture.genesis.body),
            by: fixture.admins)
        expectRefused(entry, by: DirectoryVerifier(pinnedGenesis: nil), rule: .sequence)
    }

    @Test("only the first entry may be a genesis")
    func secondGenesis() throws {
        let verifier = try fixture.verifier()
        expectRefused(fixture.next(fixture.genesis.body), by: verifier, rule: .genesis)
    }

    @Test("a genesis has a zero previous hash")
    func genesisWithPreviousHash() {
        let entry = DirectoryFixture.sign(
            DirectoryEntry(
                sequence: 0, previousHash: fixture.entries[1].hash, timestamp: DirectoryFixture.epoch,
                body: fixture.genesis.body),
            by: fixture.admins)
        expectRefused(entry, by: DirectoryVerifier(pinnedGenesis: nil), rule: .chain)
        expectRefused(entry, by: DirectoryVerifier(pinnedGenesis: entry.hash), rule: .chain)
    }

    @Test("a pinned verifier accepts only its own organisation's genesis")
    func pinnedGenesisMismatch() {
        let pinned = DirectoryVerifier(pinnedGenesis: fixture.genesisHash)
        let other = DirectoryFixture(admins: ["olga", "pavel"].map { TestAdmin($0) }, threshold: 1)
        expectRefused(other.genesis, by: pinned, rule: .genesisPin)
        // Same admins, one second later: a different organisation as far as the pin goes.
        let resigned = DirectoryFixture.sign(
            DirectoryEntry(sequence: 0, previousHash: .zero, timestamp: DirectoryFixture.epoch + 1, body: fixture.genesis.body),
            by: fixture.admins)
        expectRefused(resigned, by: pinned, rule: .genesisPin)
        expectAccepted(fixture.genesis, by: pinned)
        // Without a pin, the first genesis seen is accepted (trust on first use).
        expectAccepted(other.genesis, by: DirectoryVerifier(pinnedGenesis: nil))
    }

    @Test(
        "a genesis's freshness bounds satisfy 0 < warn ≤ refuse",
        arguments: [(0, 3600), (7200, 3600)] as [(UInt32, UInt32)])
    func invalidFreshness(warn: UInt32, refuse: UInt32) {
        let admins = fixture.admins
        let bad = DirectoryFixture(
            admins: admins, threshold: 2, freshness: FreshnessPolicy(warnAfterSeconds: warn, refuseAfterSeconds: refuse))
        expectRefused(bad.genesis, by: DirectoryVerifier(pinnedGenesis: nil), rule: .genesis)
        let equal = DirectoryFixture(
            admins: admins, threshold: 2, freshness: FreshnessPolicy(warnAfterSeconds: refuse, refuseAfterSeconds: refuse))
        expectAccepted(equal.genesis, by: DirectoryVerifier(pinnedGenesis: nil))
    }

    @Test("a genesis needs the signatures of its own threshold of admins")
    func genesisThreshold() {
        let underSigned = DirectoryFixture(admins: fixture.admins, threshold: 2, signedBy: [fixture.admins[0]])
        expectRefused(underSigned.genesis, by: DirectoryVerifier(pinnedGenesis: nil), rule: .threshold)
        let outsider = DirectoryFixture(admins: fixture.admins, threshold: 2, signedBy: fixture.admins + [TestAdmin("mallory")])
        expectRefused(outsider.genesis, by: DirectoryVerifier(pinnedGenesis: nil), rule: .signer)
    }

    @Test("entries follow each other without gaps or repeats", arguments: [0, 1, 4, 100] as [UInt64])
    func sequenceGapOrDuplicate(sequence: UInt64) throws {
        let verifier = try fixture.verifier()
        var maker = fixture
        let body = fixture.enrollment(maker.newDevice("chidi@lagos"))
        let entry = DirectoryFixture.sign(fixture.entry(body, sequence: sequence), by: fixture.defaultSigners)
        expectRefused(entry, by: verifier, rule: .sequence)
    }

    @Test("each entry names the hash of the one before it")
    func brokenChain() throws {
        let verifier = try fixture.verifier()
        var maker = fixture
        let body = fixture.enrollment(maker.newDevice("chidi@lagos"))
        for previous in [fixture.entries[1].hash, fixture.genesisHash, EntryHash.zero] {
            let entry = DirectoryFixture.sign(fixture.entry(body, previousHash: previous), by: fixture.defaultSigners)
            expectRefused(entry, by: verifier, rule: .chain)
        }
    }

    @Test("time never goes backwards; the same second is allowed")
    func timeGoesBackwards() throws {
        let verifier = try fixture.verifier()
        var maker = fixture
        let body = fixture.enrollment(maker.newDevice("chidi@lagos"))
        expectRefused(fixture.next(body, timestamp: fixture.head.timestamp - 1), by: verifier, rule: .time)
        expectAccepted(fixture.next(body, timestamp: fixture.head.timestamp), by: verifier)
    }

    @Test("an entry may be dated at most maximumClockSkew seconds after the verifier's clock")
    func futureDated() throws {
        let verifier = try fixture.verifier()
        var maker = fixture
        let body = fixture.enrollment(maker.newDevice("chidi@lagos"))
        let now = fixture.head.timestamp + 10
        let limit = now + DirectoryVerifier.maximumClockSkew
        expectRefused(fixture.next(body, timestamp: limit + 1), by: verifier, rule: .future, now: now)
        expectAccepted(fixture.next(body, timestamp: limit), by: verifier, now: now)
        // The genesis too is checked against the clock.
        expectRefused(fixture.genesis, by: DirectoryVerifier(pinnedGenesis: nil), rule: .future, now: DirectoryFixture.epoch - 301)
        expectAccepted(fixture.genesis, by: DirectoryVerifier(pinnedGenesis: nil), now: DirectoryFixture.epoch - 300)
    }

    @Test("a refused entry leaves the verifier as it was, and the right entry is still accepted")
    func refusalChangesNothing() throws {
        var verifier = try fixture.verifier()
        let before = VerifierSnapshot(verifier)
        var maker = fixture
        let device = maker.newDevice("chidi@lagos")
        let good = fixture.next(fixture.enrollment(device))
        let bad = fixture.next(fixture.enrollment(device), signedBy: [fixture.admins[0]])
        #expect(throws: DirectoryError.self) { try verifier.append(bad, now: fixture.now + 60) }
        #expect(VerifierSnapshot(verifier) == before)
        #expect(verifier.state?.members[device.member] == nil)
        try verifier.append(good, now: fixture.now + 60)
        #expect(verifier.count == 4)
        #expect(verifier.state?.members[device.member]?.isActive == true)
    }
}
