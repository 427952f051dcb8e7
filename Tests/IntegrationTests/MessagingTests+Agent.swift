import Foundation
import Testing

/// `valise agent` and `valise watch`: long-running client processes.
extension MessagingTests {
    /// Starts `valise ARGUMENTS` in the background with stdout and stderr to `output`.
    static func background(_ arguments: [String], output: String, environment: [String: String]) throws -> ChildProcess {
        try ChildProcess(ValiseCLI.executable("valise"), arguments, environment: ValiseCLI.environment(environment)) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
    }

    @Test("the agent (--foreground): commands use its keys without the passphrase; its socket directory is private; it stops after the idle timeout and removes the socket")
    func agent() throws {
        let story = try Story()
        let alice = "alice@jakarta"
        let home = story.world.path(alice)
        let socket = home + "/agent/socket"
        let agent = try Self.background(
            ["agent", "--foreground", "--home", home, "--idle-timeout", "4s"], output: story.world.path("agent.out"),
            environment: ["VALISE_PASSPHRASE": story.world.passphrase])
        defer { agent.kill() }
        #expect(story.world.eventually(within: 15) { FileManager.default.fileExists(atPath: socket) }, "the agent did not create its socket")
        let mode = try FileManager.default.attributesOfItem(atPath: home + "/agent")[.posixPermissions] as? Int
        #expect(mode == 0o700)

        // No passphrase anywhere: the agent's keys are used.
        let withAgent = try ValiseCLI.run(["sync", "--home", home, "--relay", story.world.relay.address])
        #expect(withAgent.status == 0, "sync through the agent: \(withAgent.stderr)")
        let inbox = try ValiseCLI.run(["inbox", "--home", home])
        #expect(inbox.status == 0, "inbox through the agent: \(inbox.stderr)")

        // Unused for 4 s, it stops and takes its socket with it.
        #expect(story.world.eventually(within: 20) { !agent.isRunning }, "the agent is still running after its idle timeout")
        #expect(!FileManager.default.fileExists(atPath: socket))
        let output = (try? String(contentsOfFile: story.world.path("agent.out"), encoding: .utf8)) ?? ""
        #expect(output.contains("wiped"), "\(output)")
        let without = try ValiseCLI.run(["inbox", "--home", home])
        #expect(without.status != 0, "without the agent or a passphrase, the keystore stays locked")
    }

    @Test("watch: a message appears as it arrives, and the receipt follows")
    func watch() throws {
        let story = try Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try story.valise(alice, ["sync"])
        try story.valise(bob, ["sync"])
        let output = story.world.path("watch.out")
        let watcher = try Self.background(
            ["watch", "--json", "--text", "--home", story.world.path(bob), "--relay", story.world.relay.address], output: output,
            environment: ["VALISE_PASSPHRASE": story.world.passphrase, "VALISE_RECEIPT_DELAY": "0-0"])
        defer { watcher.kill() }
        #expect(story.world.eventually(within: 15) { ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("Watching for messages") })

        let sent = try story.json(alice, ["send", "--to", bob, "--precedence", "flash", "watch this"])
        let id = try #require((sent["messages"] as? [[String: Any]])?.first?["id"] as? String)
        let shown = story.world.eventually(within: 15) { ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains(id) }
        #expect(shown, "watch did not print the message: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        #expect(((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("watch this"))
        // The watcher sends its receipt on its next tick (every 5 s).
        let delivered = try story.world.eventually(within: 20) {
            try story.valise(alice, ["sync"])
            return try story.sent(alice).first?["state"] as? String == "delivered"
        }
        #expect(delivered, "the receipt did not arrive")
        #expect(watcher.isRunning)
    }
}
