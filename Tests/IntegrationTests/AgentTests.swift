import Foundation
import Testing

/// `valise agent` as a person runs it: in the foreground, where it asks for the passphrase,
/// then in the background on its own, never reading a terminal it does not own.
@Suite("The agent: asks in the foreground, then detaches (real valise and valised)", .serialized)
struct AgentTests {
    /// Whether process `pid` still runs (a zombie does not).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }

    /// The agent's process id, from the "(pid N)" its start prints.
    static func pid(in output: String) -> pid_t? {
        guard let range = output.range(of: "(pid ") else { return nil }
        return pid_t(output[range.upperBound...].prefix { $0.isNumber })
    }

    @Test("'valise agent' without & returns once the keys are held; later commands (inbox, whoami, verify) need no passphrase; stopped by its pid")
    func detaches() throws {
        let story = try MessagingTests.Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try story.valise(alice, ["sync"])
        let home = story.world.path(alice)
        let socket = home + "/agent/socket"

        // Bounded: before the fix the agent stayed in the foreground and this ran into its limit.
        let started = try ValiseCLI.run(["agent", "--home", home], environment: ["VALISE_PASSPHRASE": story.world.passphrase], timeout: 30)
        #expect(started.status == 0, "valise agent: \(started.status) \(started.stdout) \(started.stderr)")
        let pid = try #require(Self.pid(in: started.stdout), "no pid in: \(started.stdout)")
        defer { if Self.isAlive(pid) { kill(pid, SIGKILL) } }
        #expect(started.stdout.contains(socket), "\(started.stdout)")
        #expect(Self.isAlive(pid) && FileManager.default.fileExists(atPath: socket))

        // No passphrase anywhere from here on: the agent's keys are used.
        let inbox = try ValiseCLI.run(["inbox", "--home", home])
        #expect(inbox.status == 0, "inbox through the agent: \(inbox.stderr)")
        let whoami = try ValiseCLI.run(["whoami", "--home", home, "--json"])
        #expect(whoami.status == 0 && whoami.stdout.contains(alice), "whoami through the agent: \(whoami.stderr)")
        let verify = try ValiseCLI.run(["verify", bob, "--home", home])
        #expect(verify.status == 0 && verify.stdout.contains("safety number"), "verify through the agent: \(verify.stderr)")

        // passwd always asks for the current passphrase, agent or not (as ssh-keygen -p).
        let keystore = try Data(contentsOf: URL(fileURLWithPath: home + "/device.key"))
        let passwd = try ValiseCLI.run(["passwd", "--home", home], environment: ["VALISE_NEW_PASSPHRASE": "a brand new passphrase"])
        #expect(passwd.status != 0 && passwd.stderr.contains("no passphrase given"), "passwd with an agent: \(passwd.status) \(passwd.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: home + "/device.key")) == keystore, "the keystore was rewritten")

        // Stopped by its pid: it removes its socket.
        #expect(kill(pid, SIGTERM) == 0)
        #expect(story.world.eventually(within: 10) { !Self.isAlive(pid) }, "the agent did not stop on SIGTERM")
        #expect(!FileManager.default.fileExists(atPath: socket))
        let without = try ValiseCLI.run(["inbox", "--home", home])
        #expect(without.status != 0, "without the agent or a passphrase, the keystore stays locked")
    }

    @Test("a prompt from a background process group refuses at once, without touching the terminal")
    func backgroundPromptRefuses() throws {
        let world = try RelayWorld(members: ["alice@jakarta"])
        let home = world.path("alice@jakarta")
        // A shell with job control on the terminal runs `valise whoami &`: a background job,
        // whose process group is not the terminal's foreground group.
        let shell = try TerminalSession(
            program: "/bin/sh", ["-c", "set -m; \"$0\" whoami --home \"$1\" & wait $!; echo \"exit=$?\"", ValiseCLI.executable("valise"), home])
        #expect(shell.waitFor("exit="), "\(shell.transcript)")
        _ = shell.finish()
        #expect(shell.transcript.contains("not in the foreground"), "\(shell.transcript)")
        #expect(shell.transcript.contains("exit=64"), "\(shell.transcript)")
        #expect(!shell.transcript.contains("Passphrase for"), "it prompted: \(shell.transcript)")
        #expect(shell.echoIsOn)
    }
}
