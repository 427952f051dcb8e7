import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Verifier: enrolling, rotating and revoking members")
struct VerifierMemberRuleTests {
    /// amara@jakarta and bo@nairobi enrolled, from a 2-of-3 genesis.
    let fixture: DirectoryFixture = {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        fixture.enroll("amara@jakarta")
        fixture.enroll("bo@nairobi")
        return fixture
    }()
    let amara = try! MemberName("amara@jakarta")
    let bo = try! MemberName("bo@nairobi")

    @Test("an enrolled member is active with the request's keys, mission and role")
    func enrollment() throws {
        let state = try #require(try fixture.verifier().state)
        let member = try #require(state.members[amara])
        #expect(member.isActive)
        #expect(member.identityKey == fixture.devices[amara]!.identityKey.publicKey)
        #expect(member.transportKey == fixture.devices[amara]!.transportKey.publicKey)
        #expect(member.mission == "Embassy in Jakarta")
        #expect(member.role == "attaché")
        #expect(member.enrolledAt == 1)
        #expect(state.member(identityKey: member.identityKey)?.name == amara)
        #expect(state.admittedTransportKeys.contains(member.transportKey))
    }

    @Test("a name that is an active member cannot be enrolled again")
    func enrollActiveName() throws {
        var maker = fixture
        let second = maker.newDevice(amara.value)
        expectRefused(fixture.next(fixture.enrollment(second)), by: try fixture.verifier(), rule: .member)
    }

    @Test("a revoked member can be enrolled again, with new keys only")
    func reenrollAfterRevocation() throws {
        var fixture = self.fixture
        let old = fixture.devices[amara]!
        fixture.append(DirectoryFixture.revoke(amara))
        let verifier = try fixture.verifier()
        expectRefused(fixture.next(fixture.enrollment(old)), by: verifier, rule: .keyReuse)
        let new = fixture.newDevice(amara.value)
        let accepted = expectAccepted(fixture.next(fixture.enrollment(new)), by: verifier)
        let member = try #require(accepted.state?.members[amara])
        #expect(member.isActive)
        #expect(member.identityKey == new.identityKey.publicKey)
        #expect(member.enrolledAt == 4)
        #expect(member.retiredKeys.isEmpty)
        // The old key stays revoked.
        #expect(accepted.state?.revokedKeys[old.identityKey.publicKey]?.member == amara)
    }

    @Test("an enrollment request whose signature does not verify is refused")
    func invalidEnrollmentRequest() throws {
        var maker = fixture
        let device = maker.newDevice("chidi@lagos")
        let good = device.enrollmentRequest(created: fixture.head.timestamp)
        let forged = device.forgedEnrollmentRequest(created: fixture.head.timestamp)
        let body = EntryBody.enroll(Enrollment(request: forged, mission: "Embassy in Lagos", role: "consul"))
        expectRefused(fixture.next(body), by: try fixture.verifier(), rule: .request)
        // A request for another name does not carry over either.
        let renamed = MemberRequest(
            member: try MemberName("chidi@abuja"), oldIdentityKey: nil, identityKey: good.identityKey,
            transportKey: good.transportKey, created: good.created, signature: good.signature, oldKeySignature: nil)
        expectRefused(
            fixture.next(.enroll(Enrollment(request: renamed, mission: "Embassy in Abuja", role: "consul"))),
            by: try fixture.verifier(), rule: .request)
    }

    @Test("a planned rotation replaces the keys and records the old ones as countersigned")
    func plannedRotation() throws {
        var fixture = self.fixture
        let old = fixture.devices[amara]!
        let new = fixture.rotate(amara)
        let state = try #require(try fixture.verifier().state)
        let member = try #require(state.members[amara])
        #expect(member.identityKey == new.identityKey.publicKey)
        #expect(member.transportKey == new.transportKey.publicKey)
        #expect(member.retiredKeys == [Member.RetiredKeys(
            identityKey: old.identityKey.publicKey, transportKey: old.transportKey.publicKey, retiredAt: 3, countersigned: true)])
        #expect(member.isActive)
        #expect(!state.admittedTransportKeys.contains(old.transportKey.publicKey))
    }

    @Test("a lost-device rotation (no countersignature) is accepted and recorded as such")
    func lostDeviceRotation() throws {
        var fixture = self.fixture
        let old = fixture.devices[bo]!
        let new = fixture.rotate(bo, lostDevice: true)
        guard case .rotate(let rotation) = fixture.head.body else { Issue.record("not a rotation"); return }
        #expect(!rotation.oldKeyCountersigned)
        let member = try #require(try fixture.verifier().state?.members[bo])
        #expect(member.identityKey == new.identityKey.publicKey)
        #expect(member.retiredKeys.map(\.countersigned) == [false])
        #expect(member.retiredKeys.first?.identityKey == old.identityKey.publicKey)
    }

    @Test("only an active member's current key can be rotated")
    func rotateUnknownRevokedOrStale() throws {
        var fixture = self.fixture
        let stranger = fixture.newDevice("zed@lima")
        let strangerNew = fixture.newDevice("zed@lima")
        expectRefused(fixture.next(fixture.rotation(from: stranger, to: strangerNew)), by: try fixture.verifier(), rule: .member)

        // Replacing a retired key, with a request the retired key signed.
        let first = fixture.devices[amara]!
        fixture.rotate(amara)
        let third = fixture.newDevice(amara.value)
        expectRefused(fixture.next(fixture.rotation(from: first, to: third)), by: try fixture.verifier(), rule: .member)
        expectRefused(
            fixture.next(fixture.lostDeviceRotation(replacing: first.identityKey.publicKey, with: third)),
            by: try fixture.verifier(), rule: .member)

        let boDevice = fixture.devices[bo]!
        fixture.append(DirectoryFixture.revoke(bo))
        let boNew = fixture.newDevice(bo.value)
        expectRefused(fixture.next(fixture.rotation(from: boDevice, to: boNew)), by: try fixture.verifier(), rule: .member)
    }

    @Test("a rotation whose old-key or new-key signature does not verify is refused")
    func invalidRotationSignatures() throws {
        var maker = fixture
        let old = fixture.devices[amara]!
        let new = maker.newDevice(amara.value)
        guard case .rotate(let good) = fixture.rotation(from: old, to: new) else { return }
        let stranger = TestKeys.signing("stranger")
        let strangerSignature = stranger.signature(for: good.request.statement, purpose: .rotationRequest)
        let badOld = Rotation(
            member: good.member, oldIdentityKey: good.oldIdentityKey, newIdentityKey: good.newIdentityKey,
            newTransportKey: good.newTransportKey, created: good.created, newKeySignature: good.newKeySignature,
            oldKeySignature: strangerSignature)
        let badNew = Rotation(
            member: good.member, oldIdentityKey: good.oldIdentityKey, newIdentityKey: good.newIdentityKey,
            newTransportKey: good.newTransportKey, created: good.created, newKeySignature: strangerSignature,
            oldKeySignature: good.oldKeySignature)
        // The old key's signature over the enrollment statement is not a countersignature.
        let wrongPurpose = Rotation(
            member: good.member, oldIdentityKey: good.oldIdentityKey, newIdentityKey: good.newIdentityKey,
            newTransportKey: good.newTransportKey, created: good.created, newKeySignature: good.newKeySignature,
            oldKeySignature: old.identityKey.signature(for: good.request.statement, purpose: .enrollmentRequest))
        let verifier = try fixture.verifier()
        for rotation in [badOld, badNew, wrongPurpose] {
            expectRefused(fixture.next(.rotate(rotation)), by: verifier, rule: .request)
        }
        expectAccepted(fixture.next(.rotate(good)), by: verifier)
    }

    @Test("revoking a member revokes the current and the retired keys")
    func revokeMember() throws {
        var fixture = self.fixture
        let first = fixture.devices[amara]!
        let second = fixture.rotate(amara)
        fixture.append(DirectoryFixture.revoke(amara, reason: "recalled"))
        let state = try #require(try fixture.verifier().state)
        #expect(state.members[amara]?.status == .revoked(reason: "recalled", sequence: 4))
        #expect(state.revokedKeys[first.identityKey.publicKey] == RevokedKey(member: amara, reason: "recalled", sequence: 4))
        #expect(state.revokedKeys[second.identityKey.publicKey] == RevokedKey(member: amara, reason: "recalled", sequence: 4))
        #expect(!state.admittedTransportKeys.contains(second.transportKey.publicKey))
        #expect(state.activeMembers.map(\.name) == [bo])
    }

    @Test("an unknown or already revoked member cannot be revoked")
    func revokeUnknownOrRevoked() throws {
        var fixture = self.fixture
        expectRefused(fixture.next(DirectoryFixture.revoke(try MemberName("zed@lima"))), by: try fixture.verifier(), rule: .member)
        let key = fixture.devices[bo]!.identityKey.publicKey
        fixture.append(DirectoryFixture.revoke(bo))
        let verifier = try fixture.verifier()
        expectRefused(fixture.next(DirectoryFixture.revoke(bo)), by: verifier, rule: .member)
        expectRefused(fixture.next(DirectoryFixture.revoke(key: key)), by: verifier, rule: .member)
        expectRefused(fixture.next(DirectoryFixture.revoke(key: TestKeys.signing("nobody").publicKey)), by: verifier, rule: .member)
        // An admin's key is not a member's key.
        expectRefused(fixture.next(DirectoryFixture.revoke(key: fixture.admins[0].signingKey.publicKey)), by: verifier, rule: .member)
    }

    @Test("revoking a retired identity key leaves the member active")
    func revokeRetiredKey() throws {
        var fixture = self.fixture
        let first = fixture.devices[amara]!
        fixture.rotate(amara)
        fixture.append(DirectoryFixture.revoke(key: first.identityKey.publicKey, reason: "old laptop stolen"))
        let verifier = try fixture.verifier()
        let state = try #require(verifier.state)
        #expect(state.members[amara]?.isActive == true)
        #expect(state.revokedKeys[first.identityKey.publicKey] == RevokedKey(member: amara, reason: "old laptop stolen", sequence: 4))
        expectRefused(fixture.next(DirectoryFixture.revoke(key: first.identityKey.publicKey)), by: verifier, rule: .member)
    }

    @Test("revoking a member's current identity key revokes the member")
    func revokeCurrentKey() throws {
        var fixture = self.fixture
        let key = fixture.devices[bo]!.identityKey.publicKey
        fixture.append(DirectoryFixture.revoke(key: key, reason: "seized"))
        let state = try #require(try fixture.verifier().state)
        #expect(state.members[bo]?.status == .revoked(reason: "seized", sequence: 3))
        #expect(state.revokedKeys[key]?.member == bo)
    }

    @Test("revoking a member's current key also revokes its retired keys, as revoking the member does")
    func revokeCurrentKeyRevokesRetiredKeys() throws {
        var fixture = self.fixture
        let first = fixture.devices[amara]!
        let second = fixture.rotate(amara)
        fixture.append(DirectoryFixture.revoke(key: second.identityKey.publicKey, reason: "seized"))
        let state = try #require(try fixture.verifier().state)
        #expect(state.members[amara]?.isActive == false)
        #expect(state.revokedKeys[first.identityKey.publicKey] == RevokedKey(member: amara, reason: "seized", sequence: 4))
        #expect(state.revokedKeys[second.identityKey.publicKey] == RevokedKey(member: amara, reason: "seized", sequence: 4))
    }
}
