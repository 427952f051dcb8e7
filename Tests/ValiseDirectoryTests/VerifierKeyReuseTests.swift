import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Verifier: no key serves twice")
struct VerifierKeyReuseTests {
    /// A relay, amara@jakarta (rotated once) and a checkpoint key, from a 2-of-3 genesis.
    let fixture: DirectoryFixture
    let relay: TestRelay
    let retired: TestDevice
    let amara: TestDevice
    let checkpointKey: SigningKey

    init() {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        relay = fixture.newRelay("relay-1")
        fixture.append(DirectoryFixture.addRelay(relay))
        retired = fixture.enroll("amara@jakarta")
        amara = fixture.rotate(retired.member)
        checkpointKey = fixture.newCheckpointKey()
        fixture.append(DirectoryFixture.certify(checkpointKey))
        self.fixture = fixture
    }

    /// An enrollment of a new member with the given keys.
    func enrollment(identity: SigningKey, transport: AgreementPublicKey) -> DirectoryEntry {
        let request = MemberRequest.enrollment(
            member: try! MemberName("chidi@lagos"), identityKey: identity, transportKey: transport, created: fixture.head.timestamp)
        return fixture.next(.enroll(Enrollment(request: request, mission: "Embassy in Lagos", role: "consul")))
    }

    @Test("a new device cannot take an identity key used by a member, admin, relay or checkpoint")
    func identityKeyReuse() throws {
        let verifier = try fixture.verifier()
        let fresh = TestKeys.agreement("fresh").publicKey
        for key in [amara.identityKey, retired.identityKey, fixture.admins[1].signingKey, relay.signingKey, checkpointKey] {
            expectRefused(enrollment(identity: key, transport: fresh), by: verifier, rule: .keyReuse)
        }
        expectAccepted(enrollment(identity: TestKeys.signing("fresh"), transport: fresh), by: verifier)
    }

    @Test("a new device cannot take a transport key used by a member, admin or relay")
    func transportKeyReuse() throws {
        let verifier = try fixture.verifier()
        let fresh = TestKeys.signing("fresh")
        for key in [amara.transportKey, retired.transportKey, fixture.admins[2].transportKey, relay.noiseKey] {
            expectRefused(enrollment(identity: fresh, transport: key.publicKey), by: verifier, rule: .keyReuse)
        }
    }

    @Test("a rotation cannot go back to a retired key or take another member's")
    func rotationKeyReuse() throws {
        var fixture = self.fixture
        let bo = fixture.enroll("bo@nairobi")
        let verifier = try fixture.verifier()
        let backToRetired = TestDevice(amara.member.value, label: "unused")
        for identity in [retired.identityKey, bo.identityKey] {
            let request = MemberRequest.rotation(
                member: amara.member, oldIdentityKey: amara.identityKey, newIdentityKey: identity,
                newTransportKey: backToRetired.transportKey.publicKey, created: fixture.head.timestamp)
            expectRefused(
                fixture.next(.rotate(Rotation(request: request, replacing: amara.identityKey.publicKey))),
                by: verifier, rule: .keyReuse)
        }
    }

    @Test("a relay cannot take keys used by a member, admin or another relay")
    func relayKeyReuse() throws {
        let verifier = try fixture.verifier()
        let cases: [(AgreementPrivateKey, SigningKey)] = [
            (amara.transportKey, TestKeys.signing("r")),
            (TestKeys.agreement("r"), amara.identityKey),
            (fixture.admins[0].transportKey, TestKeys.signing("r")),
            (TestKeys.agreement("r"), fixture.admins[0].signingKey),
            (relay.noiseKey, TestKeys.signing("r")),
            (TestKeys.agreement("r"), relay.signingKey),
            (TestKeys.agreement("r"), checkpointKey),
        ]
        for (noise, signing) in cases {
            let record = RelayPublicFile(noiseKey: noise.publicKey, signingKey: signing).record(name: "relay-2", address: "r2.example.org:443")
            expectRefused(fixture.next(.addRelay(record)), by: verifier, rule: .keyReuse)
        }
    }

    @Test("a new admin cannot take a key used by a member, relay, checkpoint or former admin")
    func adminKeyReuse() throws {
        var fixture = self.fixture
        let verifier = try fixture.verifier()
        let admins = fixture.admins.map(\.record)
        let signingKeys = [amara.identityKey.publicKey, relay.signingKey.publicKey, checkpointKey.publicKey]
        for key in signingKeys {
            let newcomer = AdminRecord(name: "zoe", signingKey: key, transportKey: TestKeys.agreement("zoe").publicKey)
            expectRefused(fixture.next(.changeAdmins(AdminSet(admins: admins + [newcomer], threshold: 2))), by: verifier, rule: .keyReuse)
        }
        for key in [amara.transportKey.publicKey, relay.noiseKey.publicKey] {
            let newcomer = AdminRecord(name: "zoe", signingKey: TestKeys.signing("zoe").publicKey, transportKey: key)
            expectRefused(fixture.next(.changeAdmins(AdminSet(admins: admins + [newcomer], threshold: 2))), by: verifier, rule: .keyReuse)
        }
        // Admins who stay keep their keys.
        expectAccepted(fixture.next(DirectoryFixture.changeAdmins(fixture.admins + [TestAdmin("zoe")], threshold: 3)), by: verifier)

        // An admin who was removed does not come back with the same key.
        let chen = fixture.admins[2]
        fixture.appendChangeAdmins(Array(fixture.admins.prefix(2)), threshold: 2)
        expectRefused(
            fixture.next(DirectoryFixture.changeAdmins(fixture.admins + [chen], threshold: 2)), by: try fixture.verifier(),
            rule: .keyReuse)
    }

    @Test("a checkpoint key is certified once, and is no one else's key")
    func checkpointKeyReuse() throws {
        let verifier = try fixture.verifier()
        for key in [checkpointKey, fixture.admins[0].signingKey, amara.identityKey, retired.identityKey, relay.signingKey] {
            expectRefused(fixture.next(DirectoryFixture.certify(key)), by: verifier, rule: .keyReuse)
        }
        let next = expectAccepted(fixture.next(DirectoryFixture.certify(TestKeys.signing("next checkpoint"))), by: verifier)
        #expect(next.state?.checkpointKeys.map(\.certifiedAt) == [4, 5])
        #expect(next.state?.checkpointKey == TestKeys.signing("next checkpoint").publicKey)
    }
}
