import Foundation
import Testing

/// A real `valised run` on 127.0.0.1 with a port the kernel picks; stopped by process id
/// (SIGTERM, then SIGKILL after a bound). Its log goes to a file in the test's directory.
final class RelayProcess {
    let child: ChildProcess
    let port: Int
    let host: String
    let logPath: String
    private let stdout: Int32
    /// What the relay printed on stdout so far (`line(startingWith:)` reads more).
    private var printed: String

    /// Starts the relay and waits (bounded) for its "listening" line. `port` 0 lets the
    /// kernel pick one; another reuses a port (a relay restarted where clients expect it).
    /// `program` and `launcher` run valised through a wrapper (`ip netns exec NS`, say), and
    /// `host` is the address it listens on (one of the test's own namespaces).
    init(
        directory: String, logPath: String, environment extra: [String: String] = [:], logLevel: String = "debug", port requested: Int = 0,
        program: String = ValiseCLI.executable("valised"), launcher: [String] = [], host: String = "127.0.0.1"
    ) throws {
        self.host = host
        let started = try Self.launch(
            program, launcher, directory: directory, logPath: logPath, environment: extra, logLevel: logLevel, port: requested, host: host)
        (child, stdout, self.logPath, printed) = (started.child, started.stdout, logPath, started.seen)
        guard let found = started.port else {
            child.kill()
            close(started.stdout)
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            Issue.record("valised did not start: \(started.seen)\n\(log)")
            throw POSIXError(.ETIMEDOUT)
        }
        port = found
    }

    /// Spawns `program launcher… run --dir DIR --listen 127.0.0.1:PORT` (the launcher ends
    /// with valised's path; `program` may be valised itself or a wrapper such as faketime),
    /// stderr to `logPath`, and reads stdout (bounded, 20 s) until the "listening" line.
    /// The port is nil if it never came; the caller stops the child.
    static func launch(
        _ program: String, _ launcher: [String], directory: String, logPath: String, environment extra: [String: String],
        logLevel: String = "debug", port: Int = 0, host: String = "127.0.0.1"
    ) throws -> (child: ChildProcess, stdout: Int32, port: Int?, seen: String) {
        var out: [Int32] = [0, 0]
        guard pipe(&out) == 0 else { throw POSIXError(.EMFILE) }
        _ = fcntl(out[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(out[1], F_SETFD, FD_CLOEXEC)
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(log) }
        let child: ChildProcess
        do {
            child = try ChildProcess(
                program, launcher + ["run", "--dir", directory, "--listen", "\(host):\(port)", "--log-level", logLevel],
                environment: ValiseCLI.environment(extra),
                setup: { actions in
                    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
                    posix_spawn_file_actions_adddup2(&actions, out[1], 1)
                    posix_spawn_file_actions_adddup2(&actions, log, 2)
                })
        } catch {
            close(out[0])
            close(out[1])
            throw error
        }
        close(out[1])
        var seen = ""
        var found: Int?
        let deadline = Date().addingTimeInterval(20)
        while found == nil && Date() < deadline {
            guard let chunk = ValiseCLI.readAvailable(out[0], waitMilliseconds: 50) else { break }
            seen += String(decoding: chunk, as: UTF8.self)
            if let line = seen.split(separator: "\n").first(where: { $0.hasPrefix("valised listening on ") }),
               let port = line.split(separator: ":").last.flatMap({ Int($0) }) {
                found = port
            }
        }
        return (child, out[0], found, seen)
    }

    /// The first stdout line that starts with `prefix` (such as "valised metrics on "), read
    /// for at most `seconds`; nil if none came.
    func line(startingWith prefix: String, within seconds: Double = 20) -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let line = printed.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            guard Date() < deadline, let chunk = ValiseCLI.readAvailable(stdout, waitMilliseconds: 50) else { return nil }
            printed += String(decoding: chunk, as: UTF8.self)
        }
    }

    var address: String { "\(host):\(port)" }
    var isRunning: Bool { child.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Resident memory in KiB, from /proc.
    var residentKiB: Int { Self.residentKiB(of: child.pid) }

    /// Resident memory of process `pid` in KiB, from /proc (0 once it is gone).
    static func residentKiB(of pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
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
