import Foundation
import Testing
import ValiseWire

/// The cleartext preamble and the relay's notices (issue 15): a client can tell an
/// unreachable relay, a busy one, one that speaks another version, and one that did not
/// prove the key the directory names, and says each in its own words and exit status.
@Suite("Relay: preamble, BUSY and VERSION (real valise and valised)", .serialized)
struct RelayPreambleTests {
    /// `VALISE` ‖ channel ‖ version, written out byte by byte as docs/PROTOCOL.md gives it.
    static func preamble(channel: UInt8, version: UInt8) -> [UInt8] { [0x56, 0x41, 0x4C, 0x49, 0x53, 0x45, channel, version] }
    static let busyNotice: [UInt8] = [0x56, 0x41, 0x4C, 0x49, 0x53, 0x45, 0x42, 0x00]
    static func versionNotice(_ version: UInt8) -> [UInt8] { [0x56, 0x41, 0x4C, 0x49, 0x53, 0x45, 0x56, version] }

    static let impostorLine = "the relay did not prove the key the directory names for it: an impostor, or the connection was cut"
    static let busyLine = "the relay is busy (at its connection limits); try again later"

    /// The four outcomes' exit statuses (docs/CLI.md).
    enum Status {
        static let impostor: Int32 = 5
        static let unreachable: Int32 = 6
        static let busy: Int32 = 7
        static let version: Int32 = 8
    }

    func sync(_ world: RelayWorld, _ member: String, relay address: String) throws -> ValiseCLI.Result {
        try ValiseCLI.run(["sync", "--home", world.path(member), "--relay", address], environment: ["VALISE_PASSPHRASE": world.passphrase], timeout: 30)
    }

    @Test("a relay at its per-address limit answers BUSY in cleartext, and valise says the relay is busy")
    func busy() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: [
            "VALISED_LIMITS_MAX_CONNECTIONS_PER_ADDRESS": "2", "VALISED_LIMITS_HANDSHAKE_TIMEOUT_SECONDS": "60",
        ])
        // The admin's publish (from 127.0.0.1) must have left before the two are held.
        let quiet = world.eventually(within: 5) {
            let lines = world.relayLog(peer: "127.0.0.1")
            return lines.filter { $0.contains("connection opened") }.count == lines.filter { $0.contains("connection closed") }.count
        }
        #expect(quiet, "the admin's connection is still open")
        let opened = world.relayLog(peer: "127.0.0.1").filter { $0.contains("connection opened") }.count
        let held = try (0..<2).map { _ in try HostileSocket(from: "127.0.0.1", to: world.relay.port, preamble: nil) }
        #expect(world.eventually(within: 5) {
            world.relayLog(peer: "127.0.0.1").filter { $0.contains("connection opened") }.count == opened + 2
        }, "the relay did not take the two connections")

        let probe = try HostileSocket(from: "127.0.0.1", to: world.relay.port, preamble: nil)
        #expect(probe.send(Self.preamble(channel: 1, version: 2) + [0x04, 0xE0] + [UInt8](repeating: 7, count: 1248)))
        let outcome = probe.waitForClose(within: 3)
        #expect(outcome.closed && outcome.received == Self.busyNotice, "a busy relay answered \(outcome.received) (closed: \(outcome.closed))")

        let result = try sync(world, "alice@jakarta", relay: world.relay.address)
        #expect(result.status == Status.busy, "exit status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains(Self.busyLine), "alice was told: \(result.stderr)")
        #expect(!result.stderr.contains("impostor"), "a busy relay was called an impostor: \(result.stderr)")
        for socket in held { socket.close() }
    }

    @Test("a preamble for another version or channel is answered VERSION; another magic, or a link from a stranger, gets not a byte")
    func versionAnswers() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        let cases: [(sent: [UInt8], answer: [UInt8])] = [
            (Self.preamble(channel: 1, version: 1), Self.versionNotice(2)),
            (Self.preamble(channel: 1, version: 3), Self.versionNotice(2)),
            (Self.preamble(channel: 1, version: 0), Self.versionNotice(2)),
            (Self.preamble(channel: 2, version: 2), Self.versionNotice(1)),
            // A relay link whose announced key (the 32 bytes after the preamble) is no relay's.
            (Self.preamble(channel: 2, version: 1), []),
            (Self.preamble(channel: 9, version: 1), Self.versionNotice(0)),
            (Array("GET / HTTP/1.1\r\n\r\n".utf8), []),
            (Array("VALISF".utf8) + [1, 1], []),
        ]
        for (sent, answer) in cases {
            let socket = try HostileSocket(from: "127.0.0.2", to: world.relay.port, preamble: nil)
            #expect(socket.send(sent + [0x00, 0x30] + [UInt8](repeating: 1, count: 48)))
            let outcome = socket.waitForClose(within: 3)
            #expect(outcome.closed, "\(sent): still open")
            #expect(outcome.received == answer, "\(sent): answered \(outcome.received), not \(answer)")
            #expect(outcome.seconds < 2, "\(sent): closed after \(outcome.seconds) s, by a timer?")
        }
        try world.expectHealthy()
    }

    @Test("a client offering the classical handshake (version 1, a real Noise_XK first message) hears VERSION 2, then the close")
    func classicalRefused() throws {
        let world = try RelayWorld(members: ["alice@jakarta"], relayEnvironment: HostileLimits.environment)
        // An enrolled device's key, so that nothing but the version can be the reason.
        var classical = try NoiseClient(
            key: try world.transportKey("alice@jakarta"), relayKey: try world.relayKey(),
            prologue: Array("valise/1".utf8) + Self.preamble(channel: 1, version: 1), protocol: .classicalClientRelay)
        let socket = try HostileSocket(from: "127.0.0.2", to: world.relay.port, preamble: Self.preamble(channel: 1, version: 1))
        let first = try classical.firstMessage()
        #expect(first.count == 2 + 48)
        #expect(socket.send(first))
        let outcome = socket.waitForClose(within: 3)
        #expect(outcome.closed && outcome.received == Self.versionNotice(2), "answered \(outcome.received) (closed: \(outcome.closed))")
        try world.expectHealthy()
    }

    @Test("a relay that answers VERSION 1 (the classical one): valise names both versions, exit 8")
    func otherVersion() throws {
        let world = try RelayWorld(members: ["alice@jakarta"])
        let fake = try FakeRelay(answer: Self.versionNotice(1))
        let result = try sync(world, "alice@jakarta", relay: fake.address)
        #expect(result.status == Status.version, "exit status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("the relay speaks protocol version 1; this client speaks version 2"), "alice was told: \(result.stderr)")
        #expect(!result.stderr.contains("impostor"), "\(result.stderr)")
        let first = fake.firstBytes.first ?? []
        #expect(Array(first.prefix(8)) == Self.preamble(channel: 1, version: 2), "the client's first bytes: \(first.prefix(8))")
        #expect(first.count == 8 + 2 + 1248, "the preamble and the hybrid first message: \(first.count) bytes")
        fake.stop()
    }

    @Test("a relay that does not prove the pinned key (silent, or a reply from another key): the impostor sentence, exit 5")
    func impostor() throws {
        let world = try RelayWorld(members: ["alice@jakarta"])
        // Silent: closes after the first message. A reply: a well-formed frame 2 (1152 bytes)
        // that no holder of the pinned key wrote.
        for answer in [[], [0x04, 0x80] + [UInt8](repeating: 0x5A, count: 1152)] {
            let fake = try FakeRelay(answer: answer)
            let result = try sync(world, "alice@jakarta", relay: fake.address)
            #expect(result.status == Status.impostor, "exit status \(result.status): \(result.stderr)")
            #expect(result.stderr.contains(Self.impostorLine), "alice was told: \(result.stderr)")
            #expect(!result.stderr.contains("busy") && !result.stderr.contains("version"), "mixed with the others: \(result.stderr)")
            fake.stop()
        }
        // The real relay, pinned with another key, is the same case: tested in RelayTests.
    }

    @Test("nothing listening: valise says it cannot connect, and asks whether valised runs")
    func unreachable() throws {
        let world = try RelayWorld(members: ["alice@jakarta"])
        let port = try FakeRelay.unusedPort()
        let result = try sync(world, "alice@jakarta", relay: "127.0.0.1:\(port)")
        #expect(result.status == Status.unreachable, "exit status \(result.status): \(result.stderr)")
        // In words, never NIO's (`SingleConnectionFailure`, `errno: 111`).
        #expect(
            result.stderr.contains("valise: error: cannot connect to the relay: nothing listens at 127.0.0.1:\(port); is valised running?"),
            "alice was told: \(result.stderr)")
        #expect(!result.stderr.contains("errno") && !result.stderr.contains("Connection"), "\(result.stderr)")
        #expect(!result.stderr.contains("impostor"), "\(result.stderr)")
    }
}
