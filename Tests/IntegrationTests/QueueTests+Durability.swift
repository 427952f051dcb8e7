import Foundation
import Testing
import ValiseClient
import ValiseWire

// The relaxed durability mode (`durability: os`, SQLite synchronous=NORMAL): documented as
// surviving a crash of the relay process but not of the operating system. The first half
// is what a test on one machine can show; a power cut is not.
extension QueueTests {
    @Test("durability 'os': valised warns at start, and envelopes accepted before a SIGKILL of valised are all delivered after the restart")
    func relaxedDurabilitySurvivesProcessCrash() async throws {
        let relaxed = ["VALISED_DURABILITY": "os"]
        let world = try RelayWorld(members: Self.pair, relayEnvironment: relaxed)
        #expect(world.relay.log.contains("durability is 'os'"), "a warning at start:\n\(world.relay.log)")
        let alice = try await QueueDevice(world: world, member: Self.alice)
        var sent: [Data] = []
        for _ in 0..<20 {
            let id = QueueFixture.id()
            try await alice.sendAccepted(id, to: Self.bob)
            sent.append(Data(id))
        }
        await alice.close()
        world.relay.child.kill()
        world.relay = try RelayProcess(directory: world.path("relay"), logPath: world.path("relay-after-kill.log"), environment: relaxed)

        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        let delivered = await bob.deliveries(exactly: sent.count)
        #expect(delivered.map(\.id) == sent, "every accepted envelope, once, in order (\(delivered.count) of \(sent.count))")
        await bob.close()
    }

    @Test("a durability other than full or os is refused at start, with the choices named")
    func unknownDurabilityRefused() throws {
        let world = try RelayWorld(members: Self.pair)
        #expect(world.relay.stop() == 0)
        let result = try ValiseCLI.run(
            ["run", "--dir", world.path("relay"), "--listen", "127.0.0.1:0"], environment: ["VALISED_DURABILITY": "fast"],
            program: "valised", timeout: 20)
        #expect(result.status != 0)
        #expect(result.stderr.contains("durability must be full or os"), "\(result.stderr)")
    }
}
