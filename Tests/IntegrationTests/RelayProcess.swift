import Foundation
import Testing

/// A real `valised run` on 127.0.0.1 with a port the kernel picks; stopped by process id
/// (SIGTERM, then SIGKILL after a bound). Its log goes to a file in the test's directory.
final class RelayProcess {
    let child: ChildProcess
    let port: Int
    let logPath: String
    private let stdout: Int32

    /// Starts the relay and waits (bounded) for its "listening" line.
    init(directory: String, logPath: String, environment extra: [String: String] = [:]) throws {
        var out: [Int32] = [0, 0]
        guard pipe(&out) == 0 else { throw POSIXError(.EMFILE) }
        _ = fcntl(out[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(out[1], F_SETFD, FD_CLOEXEC)
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(log) }
        child = try ChildProcess(
            ValiseCLI.executable("valised"), ["run", "--dir", directory, "--listen", "127.0.0.1:0", "--log-level", "debug"],
            environment: ValiseCLI.environment(extra),
            setup: { actions in
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
                posix_spawn_file_actions_adddup2(&actions, out[1], 1)
                posix_spawn_file_actions_adddup2(&actions, log, 2)
            })
        close(out[1])
        stdout = out[0]
        self.logPath = logPath
        var seen = ""
        let deadline = Date().addingTimeInterval(20)
        var found: Int?
        while found == nil && Date() < deadline {
            guard let chunk = ValiseCLI.readAvailable(stdout, waitMilliseconds: 50) else { break }
            seen += String(decoding: chunk, as: UTF8.self)
            if let line = seen.split(separator: "\n").first(where: { $0.hasPrefix("valised listening on ") }),
               let port = line.split(separator: ":").last.flatMap({ Int($0) }) {
                found = port
            }
        }
        guard let found else {
            child.kill()
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            Issue.record("valised did not start: \(seen)\n\(log)")
            throw POSIXError(.ETIMEDOUT)
        }
        port = found
    }

    var address: String { "127.0.0.1:\(port)" }
    var isRunning: Bool { child.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Resident memory in KiB, from /proc.
    var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    /// SIGTERM, and the exit status (SIGKILL after 10 s).
    func stop() -> Int32 {
        kill(child.pid, SIGTERM)
        return child.wait(until: Date().addingTimeInterval(10))
    }

    deinit {
        child.kill()
        close(stdout)
    }
}
