import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// From `DirectoryVerifier.parallelThreshold` entries on, a batch's signatures are checked
/// on several threads before the rules; the outcome must be the same as entry by entry.
@Suite("Long logs: signatures checked in parallel")
struct LongLogTests {
    /// Lengths whose chunks (16, of ⌈n/16⌉ entries each) all start inside the batch.
    @Test("a long log verifies to the same state as entry by entry", arguments: [64, 80, 96])
    func sameState(count: Int) throws {
        #expect(count >= DirectoryVerifier.parallelThreshold)
        let fixture = DirectoryFixture.longLog(count: count)
        let batch = try fixture.verifier()
        var oneByOne = DirectoryVerifier(pinnedGenesis: fixture.genesisHash)
        for entry in fixture.entries {
            try oneByOne.append(entry, now: fixture.now)
        }
        #expect(batch.count == count)
        #expect(VerifierSnapshot(batch) == VerifierSnapshot(oneByOne))
    }

    @Test("in a long log, a bad admin signature or request is reported with its own rule and entry")
    func failuresInALongLog() throws {
        var fixture = DirectoryFixture.longLog(count: 50)
        let device = fixture.newDevice("forged@lagos")
        let good = device.enrollmentRequest(created: fixture.head.timestamp)
        let forged = MemberRequest(
            member: good.member, oldIdentityKey: nil, identityKey: good.identityKey, transportKey: good.transportKey,
            created: good.created + 1, signature: good.signature, oldKeySignature: nil)
        fixture.append(.enroll(Enrollment(request: forged, mission: "Embassy in Lagos", role: "consul")))
        for index in 51..<80 { fixture.enroll("member-\(index)@jakarta") }

        var error = #expect(throws: DirectoryError.self) { try fixture.verifier() }
        #expect(error?.code == "request")
        #expect(error?.sequence == 50)

        var entries = fixture.entries
        entries.replaceSubrange(50..., with: DirectoryFixture.longLog(count: 80).entries[50...])
        let signed = entries[40].encoded()
        entries[40] = try DirectoryEntry(decoding: flipping(signed, at: signed.count - 1))
        error = #expect(throws: DirectoryError.self) {
            try DirectoryVerifier.verify(entries, pinnedGenesis: fixture.genesisHash, now: fixture.now)
        }
        #expect(error?.code == "signature")
        #expect(error?.sequence == 40)
    }

    /// Regression: 16 chunks of ⌈n/16⌉ left the last chunks empty for n = 65…74, 81…89,
    /// 97…104, …, and an empty chunk's range trapped.
    @Test("a long log of any length verifies", arguments: [65, 70, 100])
    func anyLength(count: Int) throws {
        let fixture = DirectoryFixture.longLog(count: count)
        let verifier = try fixture.verifier()
        #expect(verifier.count == count)
    }
}
