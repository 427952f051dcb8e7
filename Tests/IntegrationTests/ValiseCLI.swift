import Foundation
import Testing

/// Runs the real `valise` executable built beside the test bundle, as a user would: in a
/// session of its own (so it never finds the developer's terminal), with a clean
/// environment, and never for longer than a deadline.
enum ValiseCLI {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The directory holding the built executables (the test bundle's own directory).
    static let productsDirectory: String = {
        if let override = ProcessInfo.processInfo.environment["VALISE_PRODUCTS_DIR"] { return override }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().path
    }()

    static func executable(_ name: String) -> String { productsDirectory + "/" + name }

    /// Nothing from the developer's own VALISE_* settings or home leaks in.
    static func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VALISE_") }
        env["HOME"] = "/nonexistent-home-for-tests"
        for (key, value) in extra { env[key] = value }
        return env
    }

    /// Runs `program arguments` with stdin from /dev/null and collects its output.
    @discardableResult
    static func run(
        _ arguments: [String], environment extra: [String: String] = [:], program: String = "valise",
        timeout: Double = 60
    ) throws -> Result {
        try run(path: executable(program), arguments, environment: extra, timeout: timeout)
    }

    /// Runs the program at `path` (never through a shell) with stdin from /dev/null, and
    /// collects its output, bounded by `timeout` seconds.
    static func run(path: String, _ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 60) throws -> Result {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        // Close-on-exec, so that children spawned at the same time by other tests do not
        // hold these pipes open (dup2 in the child clears the flag on 1 and 2).
        guard makePipe(&out), makePipe(&err) else { throw POSIXError(.EMFILE) }
        let child: ChildProcess
        do {
            child = try ChildProcess(
                path, arguments, environment: environment(extra),
                setup: { actions in
                    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
                    posix_spawn_file_actions_adddup2(&actions, out[1], 1)
                    posix_spawn_file_actions_adddup2(&actions, err[1], 2)
                }
            )
        } catch {
            for fd in out + err { close(fd) }
            throw error
        }
        close(out[1])
        close(err[1])
        defer {
            close(out[0])
            close(err[0])
        }
        var collected: [Int32: [UInt8]] = [out[0]: [], err[0]: []]
        var open = Set([out[0], err[0]])
        let deadline = Date().addingTimeInterval(timeout)
        while !open.isEmpty && Date() < deadline {
            for fd in open {
                let chunk = readAvailable(fd, waitMilliseconds: 20)
                if let chunk { collected[fd]! += chunk } else { open.remove(fd) }
            }
        }
        let status = child.wait(until: deadline)
        return Result(
            status: status,
            stdout: String(decoding: collected[out[0]]!, as: UTF8.self),
            stderr: String(decoding: collected[err[0]]!, as: UTF8.self)
        )
    }

    private static func makePipe(_ ends: inout [Int32]) -> Bool {
        guard pipe(&ends) == 0 else { return false }
        return fcntl(ends[0], F_SETFD, FD_CLOEXEC) == 0 && fcntl(ends[1], F_SETFD, FD_CLOEXEC) == 0
    }

    /// Bytes now readable on `fd` (possibly none), or nil at end of file or on error.
    static func readAvailable(_ fd: Int32, waitMilliseconds: Int32) -> [UInt8]? {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, waitMilliseconds) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &buffer, buffer.count)
        if count < 0 && errno == EINTR { return [] }
        return count > 0 ? Array(buffer[0..<count]) : nil
    }
}

/// Drives `valise` on a pseudo-terminal that is its controlling terminal, answering its
/// prompts the way a person would: wait for the prompt, then type.
final class TerminalSession {
    private let master: Int32
    private let child: ChildProcess
    private(set) var transcript = ""

    init(program: String = ValiseCLI.executable("valise"), _ arguments: [String], environment extra: [String: String] = [:]) throws {
        master = PseudoTerminalCalls.open(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0, PseudoTerminalCalls.grant(master) == 0, PseudoTerminalCalls.unlock(master) == 0,
              let name = PseudoTerminalCalls.name(master) else {
            throw POSIXError(.EIO)
        }
        // The child is a session leader, so opening the terminal (without O_NOCTTY) makes it
        // the child's controlling terminal, its /dev/tty.
        child = try ChildProcess(
            program, arguments, environment: ValiseCLI.environment(extra),
            setup: { actions in
                posix_spawn_file_actions_addopen(&actions, 0, name, O_RDWR, 0)
                posix_spawn_file_actions_adddup2(&actions, 0, 1)
                posix_spawn_file_actions_adddup2(&actions, 0, 2)
            }
        )
    }

    /// Reads output until `text` appears (bounded: 20 s), returning whether it did.
    @discardableResult
    func waitFor(_ text: String, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !transcript.contains(text) && Date() < deadline {
            guard let chunk = ValiseCLI.readAvailable(master, waitMilliseconds: 50) else { break }
            transcript += String(decoding: chunk, as: UTF8.self)
        }
        return transcript.contains(text)
    }

    /// Reads output until `text` has appeared `occurrences` times (a prompt asked again).
    @discardableResult
    func waitFor(_ text: String, occurrences: Int, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        func count() -> Int { transcript.components(separatedBy: text).count - 1 }
        while count() < occurrences && Date() < deadline {
            guard let chunk = ValiseCLI.readAvailable(master, waitMilliseconds: 50) else { break }
            transcript += String(decoding: chunk, as: UTF8.self)
        }
        return count() >= occurrences
    }

    /// Whether the terminal echoes input (the settings the child left behind).
    var echoIsOn: Bool {
        var settings = termios()
        guard tcgetattr(master, &settings) == 0 else { return false }
        return settings.c_lflag & tcflag_t(ECHO) != 0
    }

    /// Sends raw bytes as if typed (control characters included).
    func press(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(master, $0.baseAddress!, $0.count) }
    }

    func type(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(master, $0.baseAddress!, $0.count) }
    }

    /// Collects the rest of the output and the exit status (bounded: 20 s, then killed).
    func finish() -> Int32 {
        let deadline = Date().addingTimeInterval(20)
        while child.isRunning && Date() < deadline {
            if let chunk = ValiseCLI.readAvailable(master, waitMilliseconds: 50) {
                transcript += String(decoding: chunk, as: UTF8.self)
            }
        }
        return child.wait(until: deadline)
    }

    deinit {
        child.kill()
        close(master)
    }
}

/// A child started with posix_spawn in a new session (POSIX_SPAWN_SETSID), waited for with
/// a deadline and killed after it: a test can never hang on it.
final class ChildProcess {
    let pid: pid_t
    private var status: Int32?

    init(
        _ path: String, _ arguments: [String], environment: [String: String],
        setup: (inout posix_spawn_file_actions_t) -> Void
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        setup(&actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc 2.26+); the Glibc module does not export the constant.
        posix_spawnattr_setflags(&attributes, Int16(0x80))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        self.pid = pid
    }

    var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            status = Self.exitStatus(raw)
            return false
        }
        return true
    }

    /// The exit status (128 + signal for a signal), killing the child at the deadline.
    func wait(until deadline: Date) -> Int32 {
        while isRunning && Date() < deadline { usleep(5_000) }
        if isRunning { kill() }
        return status ?? -1
    }

    func kill() {
        guard status == nil else { return }
        Glibc.kill(pid, SIGKILL)
        var raw: Int32 = 0
        if waitpid(pid, &raw, 0) == pid { status = Self.exitStatus(raw) }
    }

    private static func exitStatus(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }

    deinit { kill() }
}

/// posix_openpt and friends, looked up at run time: Glibc's Swift module hides them behind
/// _XOPEN_SOURCE.
private enum PseudoTerminalCalls {
    typealias IntFunction = @convention(c) (Int32) -> Int32
    typealias NameFunction = @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?

    private static func function<T>(_ symbol: String, _ type: T.Type) -> T {
        guard let address = dlsym(dlopen(nil, RTLD_NOW), symbol) else { fatalError("no \(symbol) in libc") }
        return unsafeBitCast(address, to: type)
    }

    static func open(_ flags: Int32) -> Int32 { function("posix_openpt", IntFunction.self)(flags) }
    static func grant(_ fd: Int32) -> Int32 { function("grantpt", IntFunction.self)(fd) }
    static func unlock(_ fd: Int32) -> Int32 { function("unlockpt", IntFunction.self)(fd) }
    static func name(_ fd: Int32) -> String? { function("ptsname", NameFunction.self)(fd).map { String(cString: $0) } }
}
