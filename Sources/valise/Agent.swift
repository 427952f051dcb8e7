import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto

#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) private var agentStopRequested: sig_atomic_t = 0

extension Valise {
    struct Agent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hold this device's unlocked keys for your login session, so the passphrase is typed once.",
            discussion: """
                Like ssh-agent: it asks for the passphrase once, then stays in the foreground \
                (run it in its own terminal, or end the line with &) and hands the keys to \
                valise commands run by you for the same Valise home, through a socket in \
                HOME/agent/ that only you can open. Other users are refused. It stops, \
                wiping the keys from memory, after --idle-timeout without use, or on Ctrl-C. \
                A command given --passphrase-file does not use the agent.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Stop after this long without a request: 90s, 30m, 8h…", valueName: "duration"))
        var idleTimeout: DurationArgument = DurationArgument(seconds: 3600)

        func run() async throws {
            let server = try reportingErrors { () throws(ClientError) -> AgentServer in
                let home = try options.resolveHome()
                let keystore = DeviceKeystore(home: home)
                _ = try keystore.inspect()
                let server = try AgentServer(home: home, passphrase: try options.passphrase(for: keystore.path), idleTimeout: UInt64(idleTimeout.seconds))
                try server.listen()
                return server
            }
            signal(SIGINT) { _ in agentStopRequested = 1 }
            signal(SIGTERM) { _ in agentStopRequested = 1 }
            print("valise agent: holding the keys of \(server.memberName) at \(server.socketPath); stops after \(DurationArgument.describe(idleTimeout.seconds)) unused or on Ctrl-C.")
            fflush(nil)
            server.serve(now: Environment.now, shouldStop: { agentStopRequested != 0 }) { line in
                printNote("valise agent: \(line)")
            }
            print("valise agent: stopped; the keys were wiped from memory.")
        }
    }
}
