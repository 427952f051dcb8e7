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
                Like ssh-agent: it asks for the passphrase once, here in the foreground, then \
                goes on in the background on its own and returns, printing its process id. \
                Do not end the line with &: a program in the background must not read the \
                terminal. It hands the keys to valise commands run by you for the same Valise \
                home, through a socket in HOME/agent/ that only you can open. Other users are \
                refused. It stops, wiping the keys from memory, after --idle-timeout without \
                use, or with 'kill PID'. A command given --passphrase-file does not use the \
                agent. --foreground keeps it attached (for a service manager, or a terminal \
                of its own; Ctrl-C stops it).
                """
        )

        @OptionGroup var options: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Stop after this long without a request: 90s, 30m, 8h…", valueName: "duration"))
        var idleTimeout: DurationArgument = DurationArgument(seconds: 3600)

        @Flag(name: .long, help: "Stay attached to this terminal instead of going on in the background.")
        var foreground = false

        /// Internal: the detached agent, started by `valise agent` with the passphrase on a pipe.
        @Flag(name: .customLong("serve-detached"), help: .hidden)
        var serveDetached = false

        func run() async throws {
            if serveDetached {
                serveInBackground()
                return
            }
            let (home, passphrase) = try reportingErrors { () throws(ClientError) -> (ValiseHome, SecretBytes) in
                let home = try options.resolveHome()
                let keystore = DeviceKeystore(home: home)
                _ = try keystore.inspect()
                try AgentServer.checkNoneRunning(home: home)
                // Checked here, where a person can type it again, not in the agent.
                let passphrase = try options.unlocking(keystore.path) { (passphrase) throws(ClientError) -> SecretBytes in
                    _ = try keystore.unlock(passphrase: passphrase)
                    return passphrase
                }
                return (home, passphrase)
            }
            if foreground {
                try serveInForeground(home: home, passphrase: passphrase)
                return
            }
            let started = try reportingErrors { () throws(ClientError) -> AgentLauncher.Started in
                // The agent starts in "/", so it is given the home as an absolute path.
                let absolute = home.path.hasPrefix("/") ? home.path : FileManager.default.currentDirectoryPath + "/" + home.path
                let arguments = ["agent", "--home", absolute, "--idle-timeout", "\(idleTimeout.seconds)s", "--serve-detached"]
                return try AgentLauncher.start(executable: Self.executablePath, arguments: arguments, passphrase: passphrase)
            }
            print("valise agent: holding the keys of \(started.memberName) at \(home.agentSocketPath) (pid \(started.pid)); stops after \(DurationArgument.describe(idleTimeout.seconds)) unused, or with: kill \(started.pid)")
        }

        /// This program, to start again as the detached agent.
        static var executablePath: String {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        }

        private func serveInForeground(home: ValiseHome, passphrase: SecretBytes) throws {
            let server = try reportingErrors { () throws(ClientError) -> AgentServer in
                let server = try AgentServer(home: home, passphrase: passphrase, idleTimeout: UInt64(idleTimeout.seconds))
                try server.listen()
                return server
            }
            installStopHandlers()
            print("valise agent: holding the keys of \(server.memberName) at \(server.socketPath); stops after \(DurationArgument.describe(idleTimeout.seconds)) unused or on Ctrl-C.")
            fflush(nil)
            server.serve(now: Environment.now, shouldStop: { agentStopRequested != 0 }) { line in
                printNote("valise agent: \(line)")
            }
            print("valise agent: stopped; the keys were wiped from memory.")
        }

        /// The detached agent: no terminal, its output on /dev/null; it tells the command
        /// that started it whether it serves, then serves.
        private func serveInBackground() {
            let outcome = { () throws(ClientError) -> AgentServer in
                guard let passphrase = AgentLauncher.receivePassphrase() else {
                    throw .failure("agent-start", "the agent did not receive the passphrase")
                }
                let server = try AgentServer(home: try options.resolveHome(), passphrase: passphrase, idleTimeout: UInt64(idleTimeout.seconds))
                try server.listen()
                return server
            }
            let server: AgentServer
            do {
                server = try outcome()
            } catch {
                AgentLauncher.report(.failure(error))
                return
            }
            installStopHandlers()
            // Holds no directory busy (the home was given as an absolute path).
            _ = chdir("/")
            AgentLauncher.report(.success(server.memberName))
            server.serve(now: Environment.now, shouldStop: { agentStopRequested != 0 }) { _ in }
        }

        private func installStopHandlers() {
            signal(SIGINT) { _ in agentStopRequested = 1 }
            signal(SIGTERM) { _ in agentStopRequested = 1 }
        }
    }
}
