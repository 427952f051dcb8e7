import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// What a relay checks of a publish before any signature (`PublishPrecheck`), and the
/// in-order verification after it (`extend(prechecked:)`).
@Suite("Publish precheck")
struct PublishPrecheckTests {
    /// A 2-of-3 organisation with ten members, all verified.
    static func organisation() -> DirectoryFixture {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        for index in 0..<10 { fixture.enroll("member-\(index)@jakarta") }
        return fixture
    }

    /// `entry` with the first byte of its last signature changed: it decodes, its signer is
    /// still the admin's key, and the signature does not verify.
    static func forged(_ entry: DirectoryEntry) throws -> DirectoryEntry {
        let bytes = entry.encoded()
        return try DirectoryEntry(decoding: flipping(bytes, at: bytes.count - 64))
    }

    /// Revocations of members 0 to `count - 1`, each signed by `signers`, continuing `fixture`.
    static func revocations(_ fixture: DirectoryFixture, count: Int, signedBy signers: [TestAdmin]) -> [DirectoryEntry] {
        var builder = fixture
        return (0..<count).map { index in
            builder.append(DirectoryFixture.revoke(try! MemberName("member-\(index)@jakarta")), signedBy: signers)
        }
    }

    func expectPrecheckRefuses(
        _ entries: [DirectoryEntry], _ verifier: DirectoryVerifier, now: UInt64, rule: DirectoryError.Rule, sequence: UInt64?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let error = #expect(throws: DirectoryError.self, sourceLocation: sourceLocation) {
            try PublishPrecheck.check(entries.map { $0.encoded() }, against: verifier, now: now)
        }
        #expect(error?.code == rule.rawValue, "\(error?.message ?? "no error")", sourceLocation: sourceLocation)
        #expect(error?.sequence == sequence, sourceLocation: sourceLocation)
    }

    @Test("entries signed by keys that are not admins, or by too few admins, are refused without a signature verified: forged signatures are refused for the rule, not the signature")
    func signersAndThreshold() throws {
        let fixture = Self.organisation()
        let verifier = try fixture.verifier()
        let now = fixture.now + 600
        // 32 keys of an attacker's own, each signing every entry.
        let attackers = (0..<32).map { TestAdmin("attacker-\($0)", random: true) }
        expectPrecheckRefuses(Self.revocations(fixture, count: 10, signedBy: attackers), verifier, now: now, rule: .signer, sequence: 11)
        // One admin where two are needed, with a signature that does not even verify: the
        // full verifier reports the signature; the precheck never looks at it.
        var below = Self.revocations(fixture, count: 10, signedBy: [fixture.admins[0]])
        below[0] = try Self.forged(below[0])
        expectPrecheckRefuses(below, verifier, now: now, rule: .threshold, sequence: 11)
        var full = verifier
        #expect(throws: DirectoryError.self) { try full.extend(with: below, now: now) }
        // Enough admins, every signature forged: the precheck passes (it checks no signature).
        let forged = try Self.revocations(fixture, count: 10, signedBy: Array(fixture.admins.prefix(2))).map(Self.forged)
        let batch = try PublishPrecheck.check(forged.map { $0.encoded() }, against: verifier, now: now)
        #expect(batch.verifier.count == verifier.count + 10)
    }

    @Test("an admin change inside the batch is followed by its claim: the new admins may sign the entries after it, the old ones may not")
    func adminChangeInBatch() throws {
        let fixture = Self.organisation()
        let verifier = try fixture.verifier()
        var builder = fixture
        let newcomers = [TestAdmin("dalia"), TestAdmin("emeka")]
        builder.appendChangeAdmins(newcomers, threshold: 2)
        let change = builder.head
        let byNewcomers = builder.next(DirectoryFixture.revoke(try MemberName("member-0@jakarta")), signedBy: newcomers)
        let byFormer = builder.next(DirectoryFixture.revoke(try MemberName("member-0@jakarta")), signedBy: Array(fixture.admins.prefix(2)))
        let now = builder.now + 600
        let accepted = try PublishPrecheck.check([change.encoded(), byNewcomers.encoded()], against: verifier, now: now)
        #expect(accepted.verifier.state?.admins.admins.map(\.name) == ["dalia", "emeka"])
        expectPrecheckRefuses([change, byFormer], verifier, now: now, rule: .signer, sequence: byFormer.sequence)
    }

    @Test("sequence, chain, overlap and size: a gap, a broken chain, a different entry for a held sequence, too many entries or bytes, and undecodable bytes are refused")
    func shape() throws {
        let fixture = Self.organisation()
        let verifier = try fixture.verifier()
        let now = fixture.now + 600
        let signers = Array(fixture.admins.prefix(2))
        let next = Self.revocations(fixture, count: 3, signedBy: signers)
        // Overlap with the same entries is allowed; nothing new is fine too.
        let overlapping = try PublishPrecheck.check((fixture.entries.suffix(2) + next).map { $0.encoded() }, against: verifier, now: now)
        #expect(overlapping.newEntries(after: verifier.count).count == 3)
        expectPrecheckRefuses(Array(next.dropFirst()), verifier, now: now, rule: .sequence, sequence: next[1].sequence)
        let unchained = fixture.next(DirectoryFixture.revoke(try MemberName("member-0@jakarta")), signedBy: signers)
        let broken = DirectoryFixture.sign(
            fixture.entry(unchained.body, previousHash: fixture.entries[3].hash), by: signers)
        expectPrecheckRefuses([broken], verifier, now: now, rule: .chain, sequence: broken.sequence)
        let other = DirectoryFixture.sign(
            DirectoryEntry(sequence: 10, previousHash: fixture.entries[9].hash, timestamp: fixture.entries[10].timestamp + 1,
                           body: fixture.entries[10].body), by: signers)
        expectPrecheckRefuses([other] + next, verifier, now: now, rule: .fork, sequence: 10)

        let tooMany = [[UInt8]](repeating: next[0].encoded(), count: PublishPrecheck.maximumEntries + 1)
        #expect(throws: DirectoryError.self) { try PublishPrecheck.check(tooMany, against: verifier, now: now) }
        let tooLarge = [[UInt8](repeating: 0, count: PublishPrecheck.maximumBytes + 1)]
        let large = #expect(throws: DirectoryError.self) { try PublishPrecheck.check(tooLarge, against: verifier, now: now) }
        #expect(large?.code == DirectoryError.Rule.malformed.rawValue)
        let garbage = #expect(throws: DirectoryError.self) { try PublishPrecheck.check([[1, 2, 3]], against: verifier, now: now) }
        #expect(garbage?.code == DirectoryError.Rule.malformed.rawValue)
    }

    @Test("after the precheck, signatures are verified in order and the first bad one stops the batch, reported as the full verifier reports it")
    func verificationStopsAtFirstFailure() throws {
        let fixture = Self.organisation()
        let verifier = try fixture.verifier()
        let now = fixture.now + 600
        var entries = Self.revocations(fixture, count: 10, signedBy: Array(fixture.admins.prefix(2)))
        entries[3] = try Self.forged(entries[3])
        let batch = try PublishPrecheck.check(entries.map { $0.encoded() }, against: verifier, now: now)
        var prechecked = verifier
        var verifications = 0
        let error = #expect(throws: DirectoryError.self) {
            try prechecked.extend(prechecked: batch, now: now, verifications: &verifications)
        }
        var full = verifier
        let expected = #expect(throws: DirectoryError.self) { try full.extend(with: entries, now: now) }
        #expect(error?.message == expected?.message, "the same report as the full verifier")
        #expect(error?.code == DirectoryError.Rule.signature.rawValue && error?.sequence == entries[3].sequence)
        // Three good entries of two signatures each, then the bad entry's two, checked twice
        // (found, then named): nothing after it.
        #expect(verifications == 3 * 2 + 2 * 2, "\(verifications) verifications")

        let good = Self.revocations(fixture, count: 10, signedBy: Array(fixture.admins.prefix(2)))
        var accepted = verifier
        verifications = 0
        try accepted.extend(prechecked: try PublishPrecheck.check(good.map { $0.encoded() }, against: verifier, now: now), now: now, verifications: &verifications)
        #expect(accepted.count == verifier.count + 10 && verifications == 20)
        #expect(accepted.hashes == (try PublishPrecheck.check(good.map { $0.encoded() }, against: verifier, now: now)).verifier.hashes)
    }
}
