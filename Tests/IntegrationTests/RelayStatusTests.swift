import Foundation
import Testing
import ValiseClient
import ValiseWire

/// What an operator checks daily (issue 18): `valised status --json` on a relay with mail
/// queued, and `valised queue` through the running relay's control socket.
@Suite("Relay status and queue control (real valised)", .serialized)
struct RelayStatusTests {
    static let alice = "alice@jakarta"
    static let bob = "bob@jakarta"

    /// Makes a checkpoint key, signs a checkpoint and publishes it to the relay.
    static func publishCheckpoint(_ world: RelayWorld) throws {
        let environment = ["VALISE_PASSPHRASE": world.passphrase, "VALISE_CHECKPOINT_PASSPHRASE": world.passphrase]
        for arguments in [["admin", "checkpoint-key"] + world.org + world.insecure, ["admin", "checkpoint", "--key", world.path("org/checkpoint-key")] + world.org] {
            let result = try ValiseCLI.run(arguments, environment: environment)
            try #require(result.status == 0, "valise \(arguments.joined(separator: " ")): \(result.stderr)")
        }
        try world.valise(["admin", "publish", "--relay", "hq", "--relay-address", world.relay.address] + world.org)
    }

    @Test("status --json with mail queued: the per-mailbox backlog and oldest age, disk free, limits hit recently, the checkpoint's age, open connections")
    func statusJSON() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob], relayEnvironment: ["VALISED_QUEUE_MAX_MESSAGES_PER_MAILBOX": "2"])
        try Self.publishCheckpoint(world)
        let alice = try await QueueDevice(world: world, member: Self.alice)
        for _ in 0..<2 { try await alice.sendAccepted(QueueFixture.id(), to: Self.bob, envelope: Array(repeating: 7, count: 100)) }
        #expect(await alice.send(QueueFixture.id(), to: Self.bob).refusal != nil, "the third is over the mailbox's bound")

        // limits.json is rewritten about once a second.
        try await world.expectStatus("the mailbox-full refusal among the recent limits") { status in
            ((status["limits"] as? [String: Any])?["recent"] as? [String: Int])?["mailboxFull"] == 1
        }
        let status = try world.queueStatus()
        let backlog = try #require(status["mailboxBacklog"] as? [[String: Any]], "\(status)")
        #expect(backlog.count == 1, "\(backlog)")
        #expect(backlog.first?["mailbox"] as? String == Self.bob && backlog.first?["envelopes"] as? Int == 2, "\(backlog)")
        #expect(backlog.first?["bytes"] as? Int == 200 && backlog.first?["held"] as? Int == 0, "\(backlog)")
        let oldest = try #require(backlog.first?["oldestAgeSeconds"] as? Int, "\(backlog)")
        #expect((0...600).contains(oldest))
        let disk = try #require(status["disk"] as? [String: Any], "\(status)")
        #expect((disk["freeBytes"] as? Int ?? 0) > 0 && (disk["storeBytes"] as? Int ?? 0) > 0, "\(disk)")
        let limits = try #require(status["limits"] as? [String: Any])
        #expect((limits["counts"] as? [String: Int])?["mailboxFull"] == 1 && limits["recentMinutes"] as? Int == 15, "\(limits)")
        let directory = try #require(status["directory"] as? [String: Any], "\(status)")
        let checkpoint = try #require(directory["checkpoint"] as? [String: Any], "\(directory)")
        #expect((0...600).contains(checkpoint["ageSeconds"] as? Int ?? -1), "\(checkpoint)")
        #expect(directory["warnAfterSeconds"] as? Int == 48 * 3600, "\(directory)")
        let relay = try #require(status["relay"] as? [String: Any], "\(status)")
        #expect(relay["running"] as? Bool == true && relay["processID"] as? Int == Int(world.relay.child.pid), "\(relay)")
        #expect((relay["connections"] as? [String: Int])?["device"] == 1, "alice's connection: \(relay)")

        let text = try ValiseCLI.run(["status", "--dir", world.path("relay"), "--mailboxes"], program: "valised")
        #expect(text.status == 0 && text.stdout.contains("\(Self.bob)") && text.stdout.contains("2 envelopes, 200 bytes"), "\(text.stdout)")
        #expect(text.stdout.contains("open connections: 1 device, 0 admins, 0 relays") && text.stdout.contains("newest checkpoint"), "\(text.stdout)")
        #expect(text.stdout.contains("in the last 15 min"), "\(text.stdout)")
        await alice.close()

        #expect(world.relay.stop() == 0)
        let stopped = try world.queueStatus()
        #expect((stopped["relay"] as? [String: Any])?["running"] as? Bool == false, "\(stopped)")
        #expect(!FileManager.default.fileExists(atPath: world.path("relay/control.socket")), "the control socket is removed at shutdown")
        let plain = try ValiseCLI.run(["status", "--dir", world.path("relay")], program: "valised")
        #expect(plain.stdout.contains("relay:      not running"), "\(plain.stdout)")
    }

    @Test("the periodic 'connection statistics' line at info level: admitted and open connections by role, no address or key")
    func connectionStatistics() async throws {
        let world = try RelayWorld(
            members: [Self.alice, Self.bob], relayEnvironment: ["VALISED_QUEUE_STATISTICS_SECONDS": "0.2"], relayLogLevel: "info")
        let alice = try await QueueDevice(world: world, member: Self.alice)
        let deadline = Date().addingTimeInterval(10)
        while world.relayLogLines(containing: "connection statistics", "connections.open.device=1").isEmpty && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let lines = world.relayLogLines(containing: "connection statistics")
        #expect(lines.contains { $0.contains("connections.open.device=1") }, "\(world.relay.log)")
        #expect(lines.contains { $0.contains("connections.admitted.device=1") }, "\(world.relay.log)")
        #expect(!lines.contains { $0.contains("127.0.0.1") || $0.contains("peer=") }, "\(lines)")
        await alice.close()
    }

    /// `valised queue ARGS --dir relay`.
    static func queue(_ world: RelayWorld, _ arguments: [String]) throws -> ValiseCLI.Result {
        try ValiseCLI.run(["queue"] + arguments + ["--dir", world.path("relay")], program: "valised")
    }

    @Test("queue hold keeps an envelope from delivery, release delivers it at once, delete makes the sender's status say deleted by the operator")
    func holdReleaseDelete() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob])
        let alice = try await QueueDevice(world: world, member: Self.alice)
        let (held, free, deleted) = (QueueFixture.id(), QueueFixture.id(), QueueFixture.id())
        for id in [held, free, deleted] { try await alice.sendAccepted(id, to: Self.bob) }
        let hex = [held, free, deleted].map { QueueFixture.hex(Data($0)) }

        let list = try Self.queue(world, ["list", "--mailbox", Self.bob, "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        let listed = try #require(try world.json(list)["envelopes"] as? [[String: Any]])
        #expect(Set(listed.compactMap { $0["id"] as? String }) == Set(hex), "\(listed)")

        let hold = try Self.queue(world, ["hold", hex[0]])
        #expect(hold.status == 0 && hold.stdout.contains("\(hex[0]) held"), "\(hold.stdout) \(hold.stderr)")
        let delete = try Self.queue(world, ["delete", hex[2]])
        #expect(delete.status == 0 && delete.stdout.contains("\(hex[2]) deleted"), "\(delete.stdout) \(delete.stderr)")
        #expect(world.relayLogLines(containing: "queue envelope held", hex[0]).count == 1, "\(world.relay.log)")
        #expect(world.relayLogLines(containing: "queue envelope deleted", hex[2]).count == 1, "\(world.relay.log)")

        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        #expect(await bob.deliveries(exactly: 1).map(\.id) == [Data(free)], "the held and the deleted envelope are not delivered")
        try await bob.ack([Data(free)])

        let release = try Self.queue(world, ["release", hex[0]])
        #expect(release.status == 0 && release.stdout.contains("\(hex[0]) released"), "\(release.stdout) \(release.stderr)")
        #expect(await bob.deliveries(atLeast: 2).map(\.id) == [Data(free), Data(held)], "released: pushed without another Fetch")

        let answer = try await alice.status(of: [deleted], nonce: QueueFixture.bytes(32))
        #expect(answer.statuses.first?.state == .undeliverable && answer.statuses.first?.reason == .deletedByOperator, "\(answer)")

        let unknown = try Self.queue(world, ["delete", hex[2], "nothex"])
        #expect(unknown.status == 1, "\(unknown.status)")
        #expect(unknown.stderr.contains("\(hex[2]): no queued envelope has this id") && unknown.stderr.contains("nothex: not an envelope id"), "\(unknown.stderr)")
        await alice.close()
        await bob.close()

        #expect(world.relay.stop() == 0)
        let stopped = try Self.queue(world, ["list"])
        #expect(stopped.status == 1 && stopped.stderr.contains("valised: error: no running relay on"), "\(stopped.stderr)")
    }
}

@Suite("valised init's report and refusals (real valised)", .serialized)
struct RelayInitTests {
    @Test("valised init names the organisation and prints a fingerprint, not full keys; a tampered bundle exits 5 and pins nothing")
    func initReport() throws {
        let world = try RelayWorld(members: [])
        let bundle = try Data(contentsOf: URL(fileURLWithPath: world.path("genesis.bundle")))
        let fresh = try ValiseCLI.run(
            ["init", "--dir", world.path("relay-b"), "--org-bundle", world.path("genesis.bundle"), "--unencrypted-key"], program: "valised")
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(fresh.stdout.contains("for \"Ministry\""), "\(fresh.stdout)")
        #expect(fresh.stdout.range(of: #"fingerprint: (\d{5} ){5}\d{5}"#, options: .regularExpression) != nil, "\(fresh.stdout)")
        // The genesis hash is printed whole (operators pin it); no key is.
        let keyLines = fresh.stdout.split(separator: "\n").filter { !$0.contains("genesis") }
        #expect(!keyLines.contains { $0.range(of: "[0-9a-f]{64}", options: .regularExpression) != nil }, "a full key printed: \(fresh.stdout)")

        // A byte of the genesis entry's signature changed.
        var tampered = [UInt8](bundle)
        tampered[tampered.count - 40] ^= 0x01
        try Data(tampered).write(to: URL(fileURLWithPath: world.path("tampered.bundle")))
        let refused = try ValiseCLI.run(
            ["init", "--dir", world.path("relay-c"), "--org-bundle", world.path("tampered.bundle"), "--unencrypted-key"], program: "valised")
        #expect(refused.status == 5, "\(refused.status) \(refused.stderr)")
        #expect(refused.stderr.hasPrefix("valised: error: "), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: world.path("relay-c/organisation.bundle")))
    }
}
