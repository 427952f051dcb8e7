import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Verifier: home relays, moves and relay addresses")
struct VerifierHomeRuleTests {
    /// Relays hq (the default: added first) and geneva; amara enrolled without a home (kind
    /// 4), bo at geneva (kind 10).
    let fixture: DirectoryFixture
    let amara: MemberName
    let bo: MemberName

    init() {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        fixture.append(DirectoryFixture.addRelay(fixture.newRelay("hq"), address: "hq.example.org:7400"))
        fixture.append(DirectoryFixture.addRelay(fixture.newRelay("geneva"), address: "geneva.example.org:7400"))
        amara = fixture.enroll("amara@jakarta").member
        bo = fixture.enroll("bo@geneva", home: "geneva").member
        self.fixture = fixture
    }

    func state(_ verifier: DirectoryVerifier) throws -> DirectoryState { try #require(verifier.state) }

    // MARK: - Home and default relay

    @Test("a member enrolled without a home is homed at the relay added first; kind 10 names its own")
    func homes() throws {
        let state = try state(try fixture.verifier())
        #expect(state.defaultRelay?.name == "hq")
        #expect(state.members[amara]?.home == nil)
        #expect(state.homeRelay(of: amara)?.name == "hq")
        #expect(state.members[bo]?.home == "geneva")
        #expect(state.homeRelay(of: bo)?.name == "geneva")
    }

    @Test("with no relay, no member has a home relay")
    func noRelay() throws {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        let member = fixture.enroll("amara@jakarta").member
        let state = try state(try fixture.verifier())
        #expect(state.defaultRelay == nil)
        #expect(state.homeRelay(of: member) == nil)
    }

    @Test("kind 10 at a relay the directory does not list is refused, after enroll's own rules")
    func enrollAtUnknownRelay() throws {
        var maker = fixture
        let device = maker.newDevice("chidi@lagos")
        guard case .enroll(let enrollment) = fixture.enrollment(device) else { Issue.record("not an enrollment"); return }
        let verifier = try fixture.verifier()
        let error = expectRefused(fixture.next(.enrollAtHome(enrollment, home: "lagos")), by: verifier, rule: .relay)
        #expect(error?.message.contains("there is no relay named lagos (relays: geneva, hq)") == true)
        expectAccepted(fixture.next(.enrollAtHome(enrollment, home: "hq")), by: verifier)

        // An active member is refused as `member` before its home is looked at.
        let again = maker.newDevice("bo@geneva")
        guard case .enroll(let second) = fixture.enrollment(again) else { return }
        expectRefused(fixture.next(.enrollAtHome(second, home: "lagos")), by: verifier, rule: .member)
    }

    @Test("kind 10 with a forged request or a used key is refused like kind 4")
    func enrollAtHomeRequestAndKeys() throws {
        var maker = fixture
        let device = maker.newDevice("chidi@lagos")
        let forged = device.forgedEnrollmentRequest(created: fixture.head.timestamp)
        let verifier = try fixture.verifier()
        expectRefused(
            fixture.next(.enrollAtHome(Enrollment(request: forged, mission: "Lagos", role: "consul"), home: "geneva")),
            by: verifier, rule: .request)
        let reused = fixture.devices[amara]!
        let reusedRequest = MemberRequest.enrollment(
            member: try MemberName("chidi@lagos"), identityKey: reused.identityKey, transportKey: reused.transportKey.publicKey,
            created: fixture.head.timestamp)
        expectRefused(
            fixture.next(.enrollAtHome(Enrollment(request: reusedRequest, mission: "Lagos", role: "consul"), home: "geneva")),
            by: verifier, rule: .keyReuse)
    }

    // MARK: - Move

    @Test("a move changes the member's home; moving to the default relay makes it explicit")
    func move() throws {
        var fixture = fixture
        fixture.append(.move(member: amara, home: "geneva"))
        fixture.append(.move(member: bo, home: "hq"))
        let state = try state(try fixture.verifier())
        #expect(state.members[amara]?.home == "geneva")
        #expect(state.homeRelay(of: amara)?.name == "geneva")
        #expect(state.members[bo]?.home == "hq")
    }

    @Test("a move of someone who is not an active member is refused as `member`")
    func moveNonMember() throws {
        let verifier = try fixture.verifier()
        expectRefused(fixture.next(.move(member: try MemberName("chidi@lagos"), home: "hq")), by: verifier, rule: .member)
        var revoked = fixture
        revoked.append(DirectoryFixture.revoke(amara))
        let error = expectRefused(revoked.next(.move(member: amara, home: "geneva")), by: try revoked.verifier(), rule: .member)
        #expect(error?.message.contains("revoked") == true)
    }

    @Test("a move to an unlisted relay, or to the member's current home (default counted), is refused as `relay`")
    func moveToSameOrUnknown() throws {
        let verifier = try fixture.verifier()
        expectRefused(fixture.next(.move(member: amara, home: "lagos")), by: verifier, rule: .relay)
        let error = expectRefused(fixture.next(.move(member: amara, home: "hq")), by: verifier, rule: .relay)
        #expect(error?.message.contains("already amara@jakarta's home (the default relay)") == true)
        expectRefused(fixture.next(.move(member: bo, home: "geneva")), by: verifier, rule: .relay)
    }

    @Test("a rotation keeps the home; re-enrolling a revoked member sets it afresh")
    func rotateAndReenroll() throws {
        var fixture = fixture
        fixture.rotate(bo)
        #expect(try state(try fixture.verifier()).members[bo]?.home == "geneva")

        fixture.append(DirectoryFixture.revoke(bo))
        fixture.enroll("bo@geneva")
        #expect(try state(try fixture.verifier()).members[bo]?.home == nil)
        fixture.append(DirectoryFixture.revoke(bo))
        fixture.enroll("bo@geneva", home: "geneva")
        fixture.append(DirectoryFixture.revoke(bo))
        fixture.enroll("bo@geneva", home: "hq")
        let state = try state(try fixture.verifier())
        #expect(state.members[bo]?.home == "hq")
        #expect(state.members[bo]?.isActive == true)
    }

    // MARK: - Remove relay

    @Test("a relay that active members were homed at by name cannot be removed; revoked members do not count")
    func removeRelayWithMembers() throws {
        var fixture = fixture
        let verifier = try fixture.verifier()
        let error = expectRefused(fixture.next(DirectoryFixture.removeRelay("geneva")), by: verifier, rule: .relay)
        #expect(error?.message.contains("1 member is homed at relay geneva (for example bo@geneva): move them first") == true)

        fixture.enroll("chidi@geneva", home: "geneva")
        let two = expectRefused(fixture.next(DirectoryFixture.removeRelay("geneva")), by: try fixture.verifier(), rule: .relay)
        #expect(two?.message.contains("2 members are homed at relay geneva (for example bo@geneva)") == true)

        fixture.append(DirectoryFixture.revoke(bo))
        fixture.append(.move(member: try MemberName("chidi@geneva"), home: "hq"))
        fixture.append(DirectoryFixture.removeRelay("geneva"))
        let state = try state(try fixture.verifier())
        #expect(state.relays["geneva"] == nil)
        // The revoked member's home is gone: it falls back to the default relay.
        #expect(state.homeRelay(of: bo)?.name == "hq")
    }

    @Test("members without a named home follow the default relay when it is removed")
    func defaultAfterRemoval() throws {
        var fixture = fixture
        fixture.append(.move(member: bo, home: "hq"))
        // amara is homed at hq by default only: hq may go, and geneva becomes everyone's default.
        expectRefused(fixture.next(DirectoryFixture.removeRelay("hq")), by: try fixture.verifier(), rule: .relay)
        fixture.append(.move(member: bo, home: "geneva"))
        fixture.append(DirectoryFixture.removeRelay("hq"))
        var state = try state(try fixture.verifier())
        #expect(state.defaultRelay?.name == "geneva")
        #expect(state.homeRelay(of: amara)?.name == "geneva")
        fixture.append(DirectoryFixture.addRelay(fixture.newRelay("hq"), address: "hq.example.org:7400"))
        state = try self.state(try fixture.verifier())
        #expect(state.defaultRelay?.name == "geneva")
        #expect(state.relayOrder == ["geneva", "hq"])
    }

    @Test("removing the only relay leaves members without a named home with no home relay until one is added")
    func removeOnlyRelay() throws {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        fixture.append(DirectoryFixture.addRelay(fixture.newRelay("hq")))
        let member = fixture.enroll("amara@jakarta").member
        fixture.append(DirectoryFixture.removeRelay("hq"))
        #expect(try state(try fixture.verifier()).homeRelay(of: member) == nil)
        fixture.append(DirectoryFixture.addRelay(fixture.newRelay("hq")))
        #expect(try state(try fixture.verifier()).homeRelay(of: member)?.name == "hq")
    }

    // MARK: - Relay addresses

    @Test("kind 12 replaces a relay's address list; address is the first")
    func setAddresses() throws {
        var fixture = fixture
        let addresses = ["hq-2.example.org:7400", "[2001:db8::1]:7400", "10.0.0.7:7400"]
        fixture.append(.setRelayAddresses(name: "hq", addresses: addresses))
        var state = try state(try fixture.verifier())
        #expect(state.relays["hq"]?.addresses == addresses)
        #expect(state.relays["hq"]?.address == "hq-2.example.org:7400")
        #expect(state.relays["geneva"]?.addresses == ["geneva.example.org:7400"])
        fixture.append(.setRelayAddresses(name: "hq", addresses: ["hq.example.org:7401"]))
        state = try self.state(try fixture.verifier())
        #expect(state.relays["hq"]?.addresses == ["hq.example.org:7401"])
        #expect(state.defaultRelay?.address == "hq.example.org:7401")
    }

    @Test(
        "kind 12 with an unknown relay, an invalid address or a repeated one is refused as `relay`",
        arguments: [
            ("lagos", ["lagos.example.org:7400"]),
            ("hq", ["hq.example.org:7400", "hq.example.org"]),
            ("hq", ["hq.example.org:0"]),
            ("hq", ["hq.example.org:7400", "HQ.Example.org:7400"]),
            ("hq", ["a:1", "b:1", "a:1"]),
        ])
    func invalidAddresses(_ name: String, _ addresses: [String]) throws {
        expectRefused(fixture.next(.setRelayAddresses(name: name, addresses: addresses)), by: try fixture.verifier(), rule: .relay)
    }

    @Test("kind 12 lists 1 to 8 addresses, else it is malformed", arguments: [0, 9])
    func addressCount(_ count: Int) throws {
        let addresses = (0..<count).map { "hq-\($0).example.org:7400" }
        let entry = fixture.next(.setRelayAddresses(name: "hq", addresses: addresses))
        let error = #expect(throws: FormatError.self) { try DirectoryEntry(decoding: entry.encoded()) }
        #expect(error?.message.contains("1 to 8 addresses") == true)
        expectRefused(entry, by: try fixture.verifier(), rule: .malformed)
        let eight = (0..<8).map { "hq-\($0).example.org:7400" }
        expectAccepted(fixture.next(.setRelayAddresses(name: "hq", addresses: eight)), by: try fixture.verifier())
    }
}
