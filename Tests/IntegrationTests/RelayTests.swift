import Foundation
import Testing
import NIOCore
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseTestSupport
import ValiseWire

/// An organisation with a relay, all real processes: one admin, devices for alice, bob and
/// carol, a relay that starts knowing only the genesis, and the admin publishing to it.
final class RelayWorld: OrganisationWorld {
    let directory = TemporaryDirectory()
    var relay: RelayProcess!

    /// Sets everything up and starts the relay; `environment` configures it.
    init(members: [String] = ["alice@jakarta", "bob@jakarta", "carol@nairobi"], relayEnvironment: [String: String] = [:], relayLogLevel: String = "debug") throws {
        try makeOrganisationWithRelay()
        try enroll(members.map { ($0, nil) })
        relay = try RelayProcess(directory: path("relay"), logPath: path("relay.log"), environment: relayEnvironment, logLevel: relayLogLevel)
        // The relay knows only the genesis; the admin's transport key (in it) may publish.
        try valise(["admin", "publish", "--relay", "hq", "--relay-address", relay.address] + org)
    }

    func sync(_ member: String, expect status: Int32 = 0) throws -> ValiseCLI.Result {
        try valise(["sync", "--home", path(member), "--relay", relay.address, "--json"], expect: status)
    }

    /// Revokes a member and publishes the change.
    func revoke(_ member: String) throws {
        try valise(["admin", "revoke", member, "--reason", "left the service", "--yes"] + org)
        try valise(["admin", "publish", "--relay", "hq", "--relay-address", relay.address] + org)
    }

    /// A device's transport key, read from its keystore in this process.
    func transportKey(_ member: String) throws -> AgreementPrivateKey { try deviceIdentity(member).transportKey }

    /// A device's identity (signing) key, read from its keystore in this process.
    func identityKey(_ member: String) throws -> SigningKey { try deviceIdentity(member).identityKey }

    /// The relay's Noise key, as the directory lists it.
    func relayKey() throws -> AgreementPublicKey {
        let state = try PinnedOrganisation(home: ValiseHome(path: path("alice@jakarta"))).load(now: UInt64(Date().timeIntervalSince1970)).state
        return state.relays["hq"]!.noiseKey
    }
}

@Suite("Relay: admission and directory sync (real valised)", .serialized)
struct RelayTests {
    @Test("an enrolled device syncs; a key not in the directory is refused; a revoked key is refused")
    func admission() throws {
        let world = try RelayWorld()
        let alice = try world.json(world.sync("alice@jakarta"))
        #expect(alice["entries"] as? Int == 5, "genesis, add-relay and three enrollments")
        #expect(alice["relay"] as? String == "hq")

        // Eve has the bundle but was never enrolled.
        try world.valise(["init", "--name", "eve@jakarta", "--home", world.path("eve"), "--org-bundle", world.path("org.bundle")] + world.insecure)
        let eve = try world.valise(["sync", "--home", world.path("eve"), "--relay", world.relay.address], expect: 5)
        #expect(eve.stderr.contains("not a current device or admin key"))

        try world.revoke("bob@jakarta")
        // Bob's device may read the directory up to its revocation, and nothing else: it
        // sees the signed revocation and wipes its keys.
        let bob = try world.valise(["sync", "--home", world.path("bob@jakarta"), "--relay", world.relay.address], expect: 5)
        #expect(bob.stderr.contains("the organisation revoked this device"), "\(bob.stderr)")
        #expect(!FileManager.default.fileExists(atPath: world.path("bob@jakarta/device.key")), "the revoked device's keystore was wiped")
        // Alice learns of the revocation from the relay.
        let again = try world.json(world.sync("alice@jakarta"))
        #expect(again["newEntries"] as? Int == 1)
        #expect(world.relay.log.contains("refused a key that is not a current device or admin key"))
        #expect(world.relay.isRunning)
    }

    @Test("a revocation published to the relay drops the device's open connection within a second")
    func revocationDropsLiveConnection() async throws {
        let world = try RelayWorld()
        let (client, welcome) = try await RelayClient.connect(
            host: "127.0.0.1", port: world.relay.port, clientKey: try world.transportKey("carol@nairobi"), relayKey: try world.relayKey())
        #expect(welcome.directoryCount == 5)
        let notices = client.unsolicited

        try world.revoke("carol@nairobi")
        // The publish has returned: the relay applied the entry. The drop follows within 1 s.
        let notice = try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                var iterator = notices.makeAsyncIterator()
                let message = await iterator.next()
                guard let body = message?.body, case .error(let error) = body else { return nil }
                return "\(error.code)"
            }
            group.addTask {
                try await Task.sleep(for: .seconds(1))
                return "timeout"
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        #expect(notice == "revoked", "the relay's notice: \(notice ?? "none")")
        // And the connection is gone: a request fails.
        await #expect(throws: ClientError.self) { _ = try await client.request(.ping(.init())) }
        await client.close()
    }

    @Test("a client that pins another key for the relay is refused by the handshake")
    func wrongRelayKey() async throws {
        let world = try RelayWorld(members: ["alice@jakarta"])
        let error = await #expect(throws: ClientError.self) {
            _ = try await RelayClient.connect(
                host: "127.0.0.1", port: world.relay.port, clientKey: try world.transportKey("alice@jakarta"),
                relayKey: AgreementPrivateKey().publicKey, timeout: .seconds(5))
        }
        #expect(error?.code == "relay-handshake")
        #expect(world.relay.log.contains("does not know this relay's key"))
        #expect(world.relay.isRunning)
    }

    @Test("SIGTERM: connected clients are told, the relay exits 0")
    func gracefulShutdown() async throws {
        let world = try RelayWorld(members: ["alice@jakarta"])
        let (client, _) = try await RelayClient.connect(
            host: "127.0.0.1", port: world.relay.port, clientKey: try world.transportKey("alice@jakarta"), relayKey: try world.relayKey())
        var messages = client.unsolicited.makeAsyncIterator()
        #expect(world.relay.stop() == 0)
        let notice = await messages.next()
        if let body = notice?.body, case .error(let error) = body {
            #expect(error.code == WireErrorCode.shuttingDown)
        } else {
            Issue.record("no shutting-down notice: \(String(describing: notice))")
        }
        #expect(world.relay.log.contains("stopped"))
        await client.close()
    }
}
