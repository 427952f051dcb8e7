import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseWire

/// DirectoryPublish floods against a real `valised` (issue 15, "Denial of service and
/// delayed revocation through DirectoryPublish"): the bounds below are the issue's own and
/// the only timings asserted.
@Suite("Relay: directory publish floods (real valised)", .serialized)
struct PublishFloodTests {
    /// The relay's count of Ed25519 verifications made for publishes, from `valised status --json`.
    static func signaturesVerified(_ status: [String: Any]) -> Int? {
        AbuseLimitTests.limitCount(status, "directorySignaturesVerified")
    }

    @Test("100 publishes of 1 MiB, from a device key and from an admin key signing below the threshold, delay neither another admin's revocation (< 1 s) nor a bystander's sync (< 0.5 s); the relay grows < 32 MiB and verifies no signature for them")
    func floods() async throws {
        let setup = try PublishFloodWorld()
        let world = setup.world
        let alice = world.path("alice@jakarta")
        // Alice has synced once (her prekeys are on the relay); her agent holds her keys, so
        // a sync derives no key from her passphrase.
        _ = try world.sync("alice@jakarta")
        let agent = try MessagingTests.background(
            ["agent", "--foreground", "--home", alice, "--idle-timeout", "600s"], output: world.path("agent.out"),
            environment: ["VALISE_PASSPHRASE": world.passphrase])
        defer { agent.kill() }
        #expect(world.eventually(within: 15) { FileManager.default.fileExists(atPath: alice + "/agent/socket") }, "the agent did not start")
        // Three quiet syncs, for comparison in a failure message.
        let quiet = SyncLoop(home: alice, relay: world.relay.address, minimum: 3).stop()
        #expect(quiet.allSatisfy { $0.status == 0 }, "sync through the agent: \(quiet.map(\.stderr))")
        let idleKiB = world.relay.residentKiB
        let quietSeconds = quiet.map(\.seconds)

        // A device's flood: every entry signed by 32 keys of the attacker's own.
        let attackerKeys = (0..<32).map { _ in SigningKey() }
        let held = setup.published.count
        let deviceFlood = try PublishFloodWorld.floodPublish(
            sequence: UInt64(held), head: setup.head(after: held), target: "alice@jakarta", signers: attackerKeys)
        try await Self.run(
            setup, "device flood", flooder: try world.transportKey("mallory@jakarta"), publish: deviceFlood,
            revocation: setup.revocations[0], victim: "carol@nairobi", idleKiB: idleKiB, quietSyncs: quietSeconds
        ) { answers in
            #expect(answers.allSatisfy { $0 == .notAllowed }, "a device's publishes: \(Self.tally(answers))")
        }

        // An admin key's flood: every entry signed by that admin alone, below the threshold of 2.
        let adminFlood = try PublishFloodWorld.floodPublish(
            sequence: UInt64(held + 1), head: setup.head(after: held + 1), target: "alice@jakarta", signers: [setup.consul.signing])
        try await Self.run(
            setup, "admin flood", flooder: setup.consul.transport, publish: adminFlood,
            revocation: setup.revocations[1], victim: "bob@jakarta", idleKiB: idleKiB, quietSyncs: quietSeconds
        ) { answers in
            #expect(answers.allSatisfy { $0 == .directoryRejected || $0 == .rateLimited }, "an admin's publishes below the threshold: \(Self.tally(answers))")
            #expect(answers.contains(.rateLimited), "the admin key's publishes were not rate-limited: \(Self.tally(answers))")
        }
        #expect(world.relay.isRunning)
    }

    /// The verification count once `valised status` has caught up with the relay, which
    /// writes its counts about once a second while they change: two reads 1.5 s apart agree.
    static func settledVerifications(_ world: RelayWorld) async throws -> Int? {
        var last = signaturesVerified(try world.queueStatus())
        for _ in 0..<10 {
            try await Task.sleep(for: .milliseconds(1500))
            let now = signaturesVerified(try world.queueStatus())
            if now == last { return now }
            last = now
        }
        return last
    }

    /// Answers by kind, for a failure message.
    static func tally(_ answers: [WireErrorCode?]) -> [String: Int] {
        answers.reduce(into: [:]) { $0[$1.map { "\($0)" } ?? "published", default: 0] += 1 }
    }

    /// One flood of 100 publishes from `flooder` (on 127.0.0.2), with Alice syncing all along
    /// and the registrar publishing `revocation` (of `victim`, connected) once ten are in.
    static func run(
        _ setup: PublishFloodWorld, _ label: String, flooder: AgreementPrivateKey, publish: WireDirectoryPublish,
        revocation: DirectoryEntry, victim: String, idleKiB: Int, quietSyncs: [Double], sourceLocation: SourceLocation = #_sourceLocation,
        _ checkAnswers: ([WireErrorCode?]) -> Void
    ) async throws {
        let world = setup.world
        let verifiedBefore = try await settledVerifications(world)
        let (victimSocket, _) = try world.admittedClient(from: "127.0.0.1", member: victim)
        var (adminSocket, adminClient) = try world.admittedClient(from: "127.0.0.1", key: try world.adminTransportKey())
        let (floodSocket, floodClient) = try world.admittedClient(from: "127.0.0.2", key: flooder)
        let flood = try PublishFlood(
            socket: floodSocket, client: floodClient, publish: publish, count: 100, relayPID: world.relay.child.pid, seconds: 40)
        let syncs = SyncLoop(home: world.path("alice@jakarta"), relay: world.relay.address, minimum: 3)

        #expect(flood.wait(within: 20) { $0.publishesWritten >= 10 || $0.done }, "\(label): the flood did not get going", sourceLocation: sourceLocation)
        var message = WireClientMessage()
        message.requestID = 7
        message.directoryPublish.entries = [Data(revocation.encoded())]
        let started = Date()
        #expect(adminSocket.send(try adminClient.seal(message)), sourceLocation: sourceLocation)
        let dropped = victimSocket.waitForClose(within: 10)
        let dropSeconds = Date().timeIntervalSince(started)
        #expect(dropped.closed && dropSeconds < 1, "\(label): \(victim)'s revoked key was dropped after \(dropSeconds) s (closed: \(dropped.closed))", sourceLocation: sourceLocation)
        let answer = try adminSocket.readFrame(within: 10).map { try adminClient.open($0) }
        guard case .directoryPublished? = answer?.body else {
            Issue.record("\(label): the revocation was answered \(String(describing: answer))", sourceLocation: sourceLocation)
            return
        }

        #expect(flood.wait(within: 40) { $0.done }, "\(label): the flood did not end", sourceLocation: sourceLocation)
        let runs = syncs.stop()
        let progress = flood.snapshot
        #expect(progress.failure == nil && !progress.closed, "\(label): \(progress.failure ?? "the relay closed the flood's connection")", sourceLocation: sourceLocation)
        #expect(progress.answers.count == 100, "\(label): \(progress.answers.count) answers to 100 publishes (\(progress.publishesWritten) written)", sourceLocation: sourceLocation)
        checkAnswers(progress.answers)

        let failed = runs.filter { $0.status != 0 }
        #expect(failed.isEmpty, "\(label): syncs failed: \(failed.map(\.stderr))", sourceLocation: sourceLocation)
        let slowest = runs.map(\.seconds).max() ?? 0
        #expect(
            slowest < 0.5, "\(label): the bystander's slowest sync of \(runs.count) took \(slowest) s (all: \(runs.map(\.seconds)); before the floods: \(quietSyncs))",
            sourceLocation: sourceLocation)
        let grownMiB = Double(max(progress.largestResidentKiB, world.relay.residentKiB) - idleKiB) / 1024
        #expect(grownMiB < 32, "\(label): the relay grew by \(grownMiB) MiB over its idle size", sourceLocation: sourceLocation)

        // Only the revocation's signatures were verified; none for the flood.
        let expected = verifiedBefore.map { $0 + revocation.signatures.count }
        try await world.expectStatus(
            "\(label): signature verifications before \(String(describing: verifiedBefore)), expected \(String(describing: expected)) after",
            sourceLocation: sourceLocation
        ) { expected != nil && signaturesVerified($0) == expected }
        withExtendedLifetime((victimSocket, floodSocket)) {}
    }
}
