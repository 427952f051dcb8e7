import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Verifier: admin signatures and thresholds")
struct VerifierSignatureRuleTests {
    let fixture: DirectoryFixture = {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        fixture.enroll("amara@jakarta")
        return fixture
    }()

    /// The next entry: a harmless enrollment.
    func nextBody() -> EntryBody {
        var maker = fixture
        return fixture.enrollment(maker.newDevice("chidi@lagos"))
    }

    @Test("a signature that does not verify is refused, even with enough valid ones")
    func invalidSignature() throws {
        let verifier = try fixture.verifier()
        let signed = fixture.next(nextBody(), signedBy: fixture.admins)
        // The last byte of the encoding is in the last signature.
        let tampered = try DirectoryEntry(decoding: flipping(signed.encoded(), at: signed.encoded().count - 1))
        #expect(tampered.hash == signed.hash)
        let error = expectRefused(tampered, by: verifier, rule: .signature)
        #expect(error?.message.contains("does not verify") == true)

        // A valid signature over another entry does not carry over.
        let other = fixture.next(nextBody(), signedBy: fixture.admins, timestamp: fixture.head.timestamp + 61)
        let borrowed = try entry(signed, withSignatureOf: other, at: 0)
        expectRefused(borrowed, by: verifier, rule: .signature)
    }

    @Test("a signature by a key that is not an admin is refused")
    func signerNotAdmin() throws {
        let verifier = try fixture.verifier()
        let mallory = TestAdmin("mallory")
        expectRefused(fixture.next(nextBody(), signedBy: [mallory]), by: verifier, rule: .signer)
        // Not ignored even when the admins' signatures reach the threshold.
        expectRefused(fixture.next(nextBody(), signedBy: fixture.admins + [mallory]), by: verifier, rule: .signer)
        // A member's identity key is not an admin key either.
        let member = fixture.devices.values.first!
        let byMember = fixture.next(nextBody()).signed(by: member.identityKey)
        expectRefused(byMember, by: verifier, rule: .signer)
    }

    @Test("an admin removed by a change of admins can no longer sign")
    func removedAdmin() throws {
        var fixture = self.fixture
        let removed = fixture.admins[2]
        fixture.appendChangeAdmins(Array(fixture.admins.prefix(2)), threshold: 2)
        let verifier = try fixture.verifier()
        var maker = fixture
        let body = fixture.enrollment(maker.newDevice("chidi@lagos"))
        expectRefused(fixture.next(body, signedBy: [fixture.admins[0], removed]), by: verifier, rule: .signer)
        expectAccepted(fixture.next(body, signedBy: fixture.admins), by: verifier)
    }

    @Test("an entry needs the threshold of distinct admin signatures", arguments: [0, 1])
    func belowThreshold(signatures: Int) throws {
        let verifier = try fixture.verifier()
        expectRefused(fixture.next(nextBody(), signedBy: Array(fixture.admins.prefix(signatures))), by: verifier, rule: .threshold)
        // Signing twice with one key keeps one signature.
        let twice = fixture.next(nextBody(), signedBy: [fixture.admins[0], fixture.admins[0]])
        #expect(twice.signatures.count == 1)
        expectRefused(twice, by: verifier, rule: .threshold)
        expectAccepted(fixture.next(nextBody(), signedBy: [fixture.admins[1], fixture.admins[2]]), by: verifier)
    }

    @Test("1 of 2 is not enough when the genesis asks for 2 of 2")
    func oneOfTwo() throws {
        var fixture = DirectoryFixture(adminCount: 2, threshold: 2)
        let verifier = try fixture.verifier()
        let device = fixture.newDevice("amara@jakarta")
        expectRefused(fixture.next(fixture.enrollment(device), signedBy: [fixture.admins[1]]), by: verifier, rule: .threshold)
        expectAccepted(fixture.next(fixture.enrollment(device), signedBy: fixture.admins), by: verifier)
    }

    @Test("a change of admins needs the threshold in force before it; the entry after it, the new one")
    func thresholdBeforeTheEntry() throws {
        var fixture = self.fixture
        let dalia = TestAdmin("dalia")
        let verifier = try fixture.verifier()
        let raise = DirectoryFixture.changeAdmins(fixture.admins + [dalia], threshold: 3)
        // The new admin's signature does not count: she is not an admin before the entry.
        expectRefused(fixture.next(raise, signedBy: [fixture.admins[0], dalia]), by: verifier, rule: .signer)
        // Lowering the threshold to 1 still needs the old 2 signatures.
        let lower = DirectoryFixture.changeAdmins(fixture.admins, threshold: 1)
        expectRefused(fixture.next(lower, signedBy: [fixture.admins[0]]), by: verifier, rule: .threshold)
        expectAccepted(fixture.next(raise, signedBy: Array(fixture.admins.prefix(2))), by: verifier)

        fixture.appendChangeAdmins(fixture.admins + [dalia], threshold: 3, signedBy: Array(fixture.admins.prefix(2)))
        let raised = try fixture.verifier()
        #expect(raised.state?.admins.threshold == 3)
        var maker = fixture
        let body = fixture.enrollment(maker.newDevice("chidi@lagos"))
        expectRefused(fixture.next(body, signedBy: Array(fixture.admins.prefix(2))), by: raised, rule: .threshold)
        expectAccepted(fixture.next(body, signedBy: [fixture.admins[0], fixture.admins[1], dalia]), by: raised)
    }

    @Test("a pending entry may gather signatures, but each must be a valid admin signature")
    func pendingCheck() throws {
        let verifier = try fixture.verifier()
        let partial = fixture.next(nextBody(), signedBy: [fixture.admins[0]])
        #expect(throws: Never.self) { try verifier.check(partial, now: fixture.now + 60, requireThreshold: false) }
        #expect(throws: DirectoryError.self) { try verifier.check(partial, now: fixture.now + 60, requireThreshold: true) }
        let stranger = partial.signed(by: TestAdmin("mallory").signingKey)
        let error = #expect(throws: DirectoryError.self) { try verifier.check(stranger, now: fixture.now + 60, requireThreshold: false) }
        #expect(error?.code == "signer")
    }

    /// `entry` with its signature at `index` replaced by the one `other` has from the same admin.
    func entry(_ entry: DirectoryEntry, withSignatureOf other: DirectoryEntry, at index: Int) throws -> DirectoryEntry {
        var bytes = entry.encoded()
        let offset = entry.signedBytes.count + 1 + index * 96 + 32
        bytes.replaceSubrange(offset..<offset + 64, with: other.signatures[index].signature.bytes)
        return try DirectoryEntry(decoding: bytes)
    }
}
