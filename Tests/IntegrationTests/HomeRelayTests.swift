import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseTestSupport
import ValiseWire

/// One organisation with two relays, hq (the default: added first) and geneva, both real
/// `valised` processes on loopback with their real addresses in the directory; alice is
/// enrolled without a home (so at hq), bob at geneva.
final class TwoRelayWorld: OrganisationWorld {
    let directory = TemporaryDirectory()
    var relays: [String: RelayProcess] = [:]

    init(members: [(name: String, home: String?)] = [("alice@jakarta", nil), ("bob@geneva", "geneva")]) throws {
        try valise(["admin", "init", "--name", "Ministry", "--admin-name", "registrar"] + org + insecure)
        try valise(["admin", "bundle", "--out", path("genesis.bundle")] + org)
        // Each relay starts on the genesis alone, on a port of its own, so that the
        // directory can list where it really listens.
        for name in ["hq", "geneva"] {
            let initRelay = try ValiseCLI.run(
                ["init", "--dir", path(name), "--org-bundle", path("genesis.bundle"), "--unencrypted-key"], program: "valised")
            #expect(initRelay.status == 0, "valised init: \(initRelay.stderr)")
            // Links off: these tests need relays that disagree (a move published to one only),
            // which linked relays never do for long (FederationTests covers links).
            relays[name] = try RelayProcess(directory: path(name), logPath: path("\(name).log"), environment: ["VALISED_LINKS": "off"])
            try valise(["admin", "add-relay", "--name", name, "--address", relays[name]!.address, "--relay-pub", path("\(name)/relay.pub")] + org)
        }
        try enroll(members)
        try publish(to: ["hq", "geneva"])
    }

    /// Publishes what the admin's log has to these relays.
    func publish(to names: [String]) throws {
        for name in names { try valise(["admin", "publish", "--relay", name] + org) }
    }

    /// Moves `member` to `home` and publishes the move to `names`.
    func move(_ member: String, to home: String, publishTo names: [String] = ["hq", "geneva"]) throws {
        try valise(["admin", "move", member, "--home-relay", home] + org)
        try publish(to: names)
    }

    func sync(_ member: String, _ extra: [String] = [], expect status: Int32 = 0) throws -> ValiseCLI.Result {
        try valise(["sync", "--home", path(member), "--json"] + extra, expect: status)
    }

    func relayRecord(_ name: String) throws -> RelayRecord {
        let state = try PinnedOrganisation(home: ValiseHome(path: path("alice@jakarta"))).load(now: UInt64(Date().timeIntervalSince1970)).state
        return try #require(state.relays[name])
    }
}

@Suite("Home relays: a device talks only to its home relay (real valised ×2)", .serialized)
struct HomeRelayTests {
    @Test("a device homed at geneva pointed at hq is told NOT_HOME and moves to geneva in the same command; a device at its home relay syncs as before; whoami and status show the home")
    func sentHome() throws {
        let world = try TwoRelayWorld()
        let alice = try world.json(world.sync("alice@jakarta"))
        #expect(alice["relay"] as? String == "hq")

        let bob = try world.sync("bob@geneva", ["--relay-name", "hq", "--relay", world.relays["hq"]!.address])
        #expect(bob.stderr.contains("bob@geneva's home relay is geneva (\(world.relays["geneva"]!.address)); connecting there"), "\(bob.stderr)")
        #expect(try world.json(bob)["relay"] as? String == "geneva")

        let whoami = try world.valise(["whoami", "--home", world.path("bob@geneva")])
        #expect(whoami.stdout.contains("home relay:    geneva (\(world.relays["geneva"]!.address))"), "\(whoami.stdout)")
        let status = try world.valise(["status", "--home", world.path("bob@geneva")])
        #expect(status.stdout.contains("home relay:  geneva"), "\(status.stdout)")
        #expect(status.stdout.contains("reachable (geneva at"), "\(status.stdout)")
    }

    @Test("a relay with several addresses: a node that does not accept the connection is skipped, the next address is tried; --json whoami names the home")
    func addressesInOrder() throws {
        let world = try TwoRelayWorld()
        // A port nothing listens on (taken from the kernel and closed again), then geneva's.
        let (fd, deadPort) = try Loopback.listen("a dead node")
        close(fd)
        let dead = "127.0.0.1:\(deadPort)"
        try world.valise(["admin", "set-relay-addresses", "--name", "geneva", "--address", dead, "--address", world.relays["geneva"]!.address] + world.org)
        try world.publish(to: ["hq", "geneva"])
        _ = try world.sync("bob@geneva")
        let whoami = try world.json(world.valise(["whoami", "--home", world.path("bob@geneva"), "--json"]))
        let standing = try #require(whoami["directory"] as? [String: Any])
        #expect(standing["homeRelay"] as? String == "geneva (\(dead), \(world.relays["geneva"]!.address))")
        let again = try world.json(world.sync("bob@geneva"))
        #expect(again["relay"] as? String == "geneva")

        // With every address dead, one line names them all (exit 6).
        let (fd2, deadPort2) = try Loopback.listen("another dead node")
        close(fd2)
        let dead2 = "127.0.0.1:\(deadPort2)"
        try world.valise(["admin", "set-relay-addresses", "--name", "geneva", "--address", dead, "--address", dead2] + world.org)
        try world.publish(to: ["hq"])
        // Bob learns the change from hq (which sends him home), then cannot reach geneva.
        let unreachable = try world.sync("bob@geneva", ["--relay-name", "hq"], expect: 6)
        #expect(
            unreachable.stderr.contains(
                "cannot connect to relay geneva at any of its addresses (nothing listens at \(dead), nothing listens at \(dead2)); is valised running?"),
            "\(unreachable.stderr)")
    }

    @Test("a move the device has not seen: its old home sends it away, it verifies the move from there and syncs at the new home; relays that disagree stop it (exit 6), never a guess")
    func movedMember() throws {
        let world = try TwoRelayWorld()
        _ = try world.sync("alice@jakarta")
        // Published to hq only: hq sends alice to geneva, which still thinks she is at hq.
        try world.move("alice@jakarta", to: "geneva", publishTo: ["hq"])
        let disagree = try world.sync("alice@jakarta", expect: 6)
        #expect(disagree.stderr.contains("alice@jakarta's home relay is geneva"), "\(disagree.stderr)")
        #expect(disagree.stderr.contains("relay geneva says alice@jakarta's home relay is hq, but the verified directory says geneva: the relays disagree; try again later"), "\(disagree.stderr)")

        // Once geneva has the move too, the same device (which pinned the move from hq) syncs there.
        try world.publish(to: ["geneva"])
        let moved = try world.json(world.sync("alice@jakarta"))
        #expect(moved["relay"] as? String == "geneva")
    }

    @Test("a published move drops the moved device's open connection with NOT_HOME naming its new home")
    func moveDropsLiveConnection() async throws {
        let world = try TwoRelayWorld()
        let geneva = world.relays["geneva"]!
        let (client, welcome) = try await RelayClient.connect(
            host: "127.0.0.1", port: geneva.port, clientKey: try world.deviceIdentity("bob@geneva").transportKey,
            relayKey: try world.relayRecord("geneva").noiseKey)
        #expect(welcome.role == .device)
        let notices = client.unsolicited
        try world.move("bob@geneva", to: "hq", publishTo: ["geneva"])
        // The publish has returned: the relay applied the entry and drops the connection at
        // once (bounded here, so that a relay that does not cannot hang the test).
        let notice = try await withThrowingTaskGroup(of: WireRelayMessage?.self) { group in
            group.addTask {
                var iterator = notices.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try await Task.sleep(for: .seconds(5))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard case .error(let error)? = notice?.body else {
            Issue.record("no notice: \(String(describing: notice))")
            return
        }
        #expect(error.code == .notHome)
        #expect(error.message == "bob@geneva's home relay is hq: connect there")
        await client.close()

        // Connecting again, bob is not home at geneva: he may read the directory, nothing else.
        let (again, role) = try await RelayClient.connect(
            host: "127.0.0.1", port: geneva.port, clientKey: try world.deviceIdentity("bob@geneva").transportKey,
            relayKey: try world.relayRecord("geneva").noiseKey)
        #expect(role.role == .notHome && role.homeRelay == "hq")
        _ = try await DirectorySync.fetch(again, since: 0)
        var fetch = WirePrekeyFetch()
        fetch.members = ["alice@jakarta"]
        let refused = await #expect(throws: ClientError.self) { _ = try await again.request(.prekeyFetch(fetch)) }
        #expect(refused?.code == "relay-\(WireErrorCode.notHome)")
        // The connection stays open after the refusal.
        _ = try await again.request(.ping(WirePing()))
        await again.close()
    }
}
