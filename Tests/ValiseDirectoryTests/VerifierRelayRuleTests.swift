import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Verifier: relays")
struct VerifierRelayRuleTests {
    let fixture: DirectoryFixture
    let relay: TestRelay

    init() {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        relay = fixture.newRelay("relay-1")
        fixture.append(DirectoryFixture.addRelay(relay, address: "relay-1.example.org:7443"))
        self.fixture = fixture
    }

    @Test("an added relay is in the state with its keys and address")
    func addRelay() throws {
        let state = try #require(try fixture.verifier().state)
        #expect(state.relays["relay-1"] == relay.record(address: "relay-1.example.org:7443"))
        #expect(state.relays["relay-1"]?.hasValidProof == true)
    }

    @Test("a relay name is added once")
    func duplicateName() throws {
        var maker = fixture
        let other = maker.newRelay("relay-1")
        expectRefused(fixture.next(DirectoryFixture.addRelay(other)), by: try fixture.verifier(), rule: .relay)
    }

    @Test(
        "a relay address is HOST:PORT with a port from 1 to 65535",
        arguments: ["relay.example.org", ":7443", "relay.example.org:0", "relay.example.org:65536", "relay.example.org:https",
                    "relay.example.org:", "relay example.org:7443", "relay.example.org/x:7443", "relay.example.org:-1",
                    "relay.example.org:+443", "relay.example.org:0443", "-relay.example.org:443", "relay.example.org.:443",
                    "[]:443", "[2001:db8::g]:443", "[2001:db8::1:443", "relay_1.example.org:443"])
    func invalidAddress(_ address: String) throws {
        var maker = fixture
        let other = maker.newRelay("relay-2")
        expectRefused(fixture.next(DirectoryFixture.addRelay(other, address: address)), by: try fixture.verifier(), rule: .relay)
    }

    @Test("valid relay addresses", arguments: ["relay.example.org:7443", "10.0.0.1:1", "[2001:db8::1]:443", "r:65535", "Relay-1.Example.org:443"])
    func validAddress(_ address: String) throws {
        var maker = fixture
        let other = maker.newRelay("relay-2")
        expectAccepted(fixture.next(DirectoryFixture.addRelay(other, address: address)), by: try fixture.verifier())
    }

    @Test("a relay whose proof of its signing key does not verify is refused")
    func invalidProof() throws {
        var maker = fixture
        let other = maker.newRelay("relay-2")
        let good = other.record()
        let third = maker.newRelay("relay-3").record()
        let forged = [
            RelayRecord(name: good.name, address: good.address, noiseKey: third.noiseKey, signingKey: good.signingKey, proof: good.proof),
            RelayRecord(name: good.name, address: good.address, noiseKey: good.noiseKey, signingKey: good.signingKey, proof: third.proof),
            RelayRecord(
                name: good.name, address: good.address, noiseKey: good.noiseKey, signingKey: good.signingKey,
                proof: other.signingKey.signature(for: good.noiseKey.bytes + good.signingKey.bytes, purpose: .directoryEntry)),
        ]
        let verifier = try fixture.verifier()
        for record in forged {
            #expect(!record.hasValidProof)
            expectRefused(fixture.next(.addRelay(record)), by: verifier, rule: .request)
        }
    }

    @Test("only a relay that exists can be removed; its name can then be reused with new keys")
    func removeRelay() throws {
        var fixture = self.fixture
        expectRefused(fixture.next(DirectoryFixture.removeRelay("relay-9")), by: try fixture.verifier(), rule: .relay)
        fixture.append(DirectoryFixture.removeRelay("relay-1"))
        let verifier = try fixture.verifier()
        #expect(verifier.state?.relays.isEmpty == true)
        expectRefused(fixture.next(DirectoryFixture.removeRelay("relay-1")), by: verifier, rule: .relay)
        expectRefused(fixture.next(DirectoryFixture.addRelay(relay)), by: verifier, rule: .keyReuse)
        let replacement = fixture.newRelay("relay-1")
        expectAccepted(fixture.next(DirectoryFixture.addRelay(replacement)), by: verifier)
    }
}
