import Foundation
import Testing

/// Running a relay (issue 15): one relay per directory, and a configuration that is read
/// strictly (a typo or an unparsable value stops the start, naming the key and its source).
@Suite("Relay operations: the directory lock and strict configuration (real valised)", .serialized)
struct RelayOperationsTests {
    @Test("a second valised run on the same directory refuses to start and names the first's PID; the first goes on")
    func secondRelayRefused() throws {
        let world = try RelayWorld(members: ["alice@jakarta"])
        let second = try RelayProcess.launch(
            ValiseCLI.executable("valised"), [], directory: world.path("relay"), logPath: world.path("relay-second.log"), environment: [:])
        let status = second.child.wait(until: Date().addingTimeInterval(10))
        close(second.stdout)
        let log = (try? String(contentsOfFile: world.path("relay-second.log"), encoding: .utf8)) ?? ""
        #expect(second.port == nil, "a second relay listened on port \(second.port ?? 0) over the same directory")
        #expect(status == 1, "the second valised exited \(status): \(log)")
        #expect(log.contains("PID \(world.relay.child.pid)"), "the refusal does not name the first relay's PID \(world.relay.child.pid): \(log)")
        #expect(world.relay.isRunning)
        try world.expectHealthy()
    }

    /// Runs `valised run` (bounded) with a configuration file and the given flags and
    /// environment; returns its exit status and stderr.
    func start(
        _ world: RelayWorld, file: String, flags: [String] = [], environment: [String: String] = [:]
    ) throws -> ValiseCLI.Result {
        let path = world.path("valised.yaml")
        try file.write(toFile: path, atomically: true, encoding: .utf8)
        return try ValiseCLI.run(["run", "--config", path] + flags, environment: environment, program: "valised", timeout: 15)
    }

    @Test("a misspelt key in the file (listn:) stops the start, naming the key and the file")
    func unknownFileKey() throws {
        let world = try RelayWorld(members: [])
        #expect(world.relay.stop() == 0)
        let result = try start(world, file: "directory: \(world.path("relay"))\nlistn: 127.0.0.1:0\n")
        #expect(result.status == 1, "valised started with listn: \(result.status) \(result.stderr)")
        #expect(result.stderr.contains("listn") && result.stderr.contains(world.path("valised.yaml")), "stderr: \(result.stderr)")
        #expect(!result.stdout.contains("listening"), "stdout: \(result.stdout)")
    }

    @Test("an unparsable value in the file (maxConnections: ten) stops the start, naming the key and the file")
    func unparsableFileValue() throws {
        let world = try RelayWorld(members: [])
        #expect(world.relay.stop() == 0)
        let result = try start(
            world, file: "directory: \(world.path("relay"))\nlimits:\n  maxConnections: ten\n", flags: ["--listen", "127.0.0.1:0"])
        #expect(result.status == 1, "valised started with maxConnections: ten: \(result.status) \(result.stderr)")
        #expect(result.stderr.contains("limits.maxConnections") && result.stderr.contains(world.path("valised.yaml")), "stderr: \(result.stderr)")
        #expect(result.stderr.contains("ten"), "stderr: \(result.stderr)")
    }

    @Test("an unparsable or unknown VALISED_ variable stops the start, naming the variable")
    func environmentStrict() throws {
        let world = try RelayWorld(members: [])
        #expect(world.relay.stop() == 0)
        for (name, value) in [("VALISED_LIMITS_MAX_CONNECTIONS", "lots"), ("VALISED_LIMITS_MAX_CONECTIONS", "5")] {
            let result = try start(
                world, file: "directory: \(world.path("relay"))\n", flags: ["--listen", "127.0.0.1:0"], environment: [name: value])
            #expect(result.status == 1, "valised started with \(name)=\(value): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains(name) && result.stderr.contains("environment"), "stderr: \(result.stderr)")
        }
    }

    @Test("an unparsable flag value stops the start, naming the flag")
    func flagStrict() throws {
        let world = try RelayWorld(members: [])
        #expect(world.relay.stop() == 0)
        let result = try start(world, file: "directory: \(world.path("relay"))\n", flags: ["--listen", "127.0.0.1:port", "--log-level", "debug"])
        #expect(result.status == 1, "\(result.status) \(result.stderr)")
        #expect(result.stderr.contains("--listen"), "stderr: \(result.stderr)")
    }

    @Test("valised check --config FILE prints every setting's value and where it came from")
    func check() throws {
        let world = try RelayWorld(members: [])
        let path = world.path("valised.yaml")
        try "directory: \(world.path("relay"))\nlimits:\n  maxConnections: 10\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try ValiseCLI.run(
            ["check", "--config", path, "--listen", "127.0.0.1:9"], environment: ["VALISED_LIMITS_DELIVERY_WINDOW": "32"], program: "valised",
            timeout: 15)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("limits.maxConnections: 10 (file \(path))"), "stdout: \(result.stdout)")
        #expect(lines.contains("limits.deliveryWindow: 32 (environment VALISED_LIMITS_DELIVERY_WINDOW)"), "stdout: \(result.stdout)")
        #expect(lines.contains("listen: 127.0.0.1:9 (flag --listen)"), "stdout: \(result.stdout)")
        #expect(lines.contains("limits.maxConnectionsPerAddress: 64 (default)"), "stdout: \(result.stdout)")

        let bad = try ValiseCLI.run(["check", "--config", path], environment: ["VALISED_LIMITS_MAX_CONNECTIONS": "lots"], program: "valised", timeout: 15)
        #expect(bad.status == 1 && bad.stderr.contains("VALISED_LIMITS_MAX_CONNECTIONS"), "\(bad.status): \(bad.stderr)")
    }

    @Test("the shipped config/valised.yaml passes valised check: every key it documents is a setting")
    func shippedConfiguration() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config/valised.yaml").path
        let result = try ValiseCLI.run(["check", "--config", file], program: "valised", timeout: 15)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("limits.maxConnections: 10000 (file \(file))"), "\(result.stdout)")
    }
}
