#if canImport(Glibc)
import Glibc
#endif
public import ValiseCrypto

/// Starts `valise agent` in the background the way ssh-agent does: the command a person
/// types asks for the passphrase in the foreground, then starts the serving agent as a
/// detached process of its own (a new session, no terminal, standard input and output on
/// /dev/null) and returns once it serves. A background process never reads the terminal.
///
/// The passphrase goes to the agent through an inherited pipe, never through its arguments
/// or environment (which other processes can read): on descriptor 3 the agent reads
/// `u32 length ‖ passphrase`; on descriptor 4 it answers one line, `ready NAME` or
/// `error KIND CODE<TAB>MESSAGE`, and closes it.
public enum AgentLauncher {
    static let passphraseDescriptor: Int32 = 3
    static let reportDescriptor: Int32 = 4
    /// How long the command waits for the agent to unlock the keystore (Argon2id at its
    /// standard cost takes about a second; a busy machine may take many).
    static let readyTimeoutMilliseconds: Int32 = 120_000

    /// The agent that now serves in the background.
    public struct Started: Sendable {
        public let pid: Int32
        public let memberName: String
    }

    /// Spawns `executable arguments` detached, hands it the passphrase and waits for it to
    /// report. Variables that carry passphrases are left out of its environment.
    public static func start(executable: String, arguments: [String], passphrase: SecretBytes) throws(ClientError) -> Started {
        // Descriptors above 4, so that dup2 onto 3 and 4 in the child always makes a copy
        // that survives exec; close-on-exec everywhere else.
        guard let input = pipeAbove(4), let report = pipeAbove(4) else {
            throw .failure("agent-start", "cannot start the agent: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for standard in Int32(0)...2 {
            posix_spawn_file_actions_addopen(&actions, standard, "/dev/null", standard == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, input.read, passphraseDescriptor)
        posix_spawn_file_actions_adddup2(&actions, report.write, reportDescriptor)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc 2.26+; the Glibc module does not export the constant):
        // no controlling terminal, and no SIGHUP when the person's terminal closes.
        posix_spawnattr_setflags(&attributes, Int16(0x80))

        let secretVariables: Set<String> = ["VALISE_PASSPHRASE", "VALISE_NEW_PASSPHRASE"]
        var environment: [UnsafeMutablePointer<CChar>?] = []
        var entry = environ
        while let variable = entry.pointee {
            let name = String(cString: variable).prefix { $0 != "=" }
            if !secretVariables.contains(String(name)) { environment.append(strdup(variable)) }
            entry += 1
        }
        environment.append(nil)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            environment.forEach { free($0) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environment)
        close(input.read)
        close(report.write)
        defer { close(report.read) }
        guard spawned == 0 else {
            close(input.write)
            throw .failure("agent-start", "cannot start the agent (\(executable)): \(String(cString: strerror(spawned)))")
        }
        // A child that died early must not kill this process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        var header = ByteWriter(capacity: 4)
        header.write(UInt32(passphrase.count))
        _ = header.bytes.withUnsafeBytes { writeAll(input.write, $0) }
        _ = passphrase.withUnsafeBytes { writeAll(input.write, $0) }
        close(input.write)

        let line = readLine(report.read, timeoutMilliseconds: readyTimeoutMilliseconds)
        if let line, line.hasPrefix("ready ") {
            return Started(pid: pid, memberName: String(line.dropFirst("ready ".count)))
        }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        guard let line, let error = decodeError(line) else {
            throw .failure("agent-start", "the agent stopped before it was ready")
        }
        throw error
    }

    /// The detached agent's side: the passphrase from descriptor 3 (which is closed), or nil.
    public static func receivePassphrase() -> SecretBytes? {
        defer { close(passphraseDescriptor) }
        var header = [UInt8](repeating: 0, count: 4)
        guard header.withUnsafeMutableBytes({ readAll(passphraseDescriptor, $0) }) else { return nil }
        let count = Int(header.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard count > 0, count <= PassphraseReader.maximumByteCount else { return nil }
        var ok = false
        let passphrase = SecretBytes(count: count) { buffer in ok = readAll(passphraseDescriptor, buffer) }
        return ok ? passphrase : nil
    }

    /// The detached agent's side: tells the command it serves (or why not), and closes 4.
    public static func report(_ outcome: Result<String, ClientError>) {
        let line: String
        switch outcome {
        case .success(let name): line = "ready \(name)\n"
        case .failure(let error): line = "error \(kindName(error.kind)) \(error.code)\t\(String(error.message.map { $0.isNewline ? " " : $0 }))\n"
        }
        _ = Array(line.utf8).withUnsafeBytes { writeAll(reportDescriptor, $0) }
        close(reportDescriptor)
    }

    static func decodeError(_ line: String) -> ClientError? {
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count == 3, parts[0] == "error", let kind = kind(named: String(parts[1])) else { return nil }
        let rest = parts[2].split(separator: "\t", maxSplits: 1)
        guard rest.count == 2 else { return nil }
        return ClientError(kind: kind, code: String(rest[0]), message: String(rest[1]))
    }

    static let kinds: [(ClientError.Kind, String)] = [
        (.usage, "usage"), (.wrongPassphrase, "wrong-passphrase"), (.damaged, "damaged"),
        (.notSetUp, "not-set-up"), (.verification, "verification"), (.failure, "failure"),
    ]

    static func kindName(_ kind: ClientError.Kind) -> String { kinds.first { $0.0 == kind }?.1 ?? "failure" }

    static func kind(named name: String) -> ClientError.Kind? { kinds.first { $0.1 == name }?.0 }

    private static func pipeAbove(_ floor: Int32) -> (read: Int32, write: Int32)? {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { return nil }
        defer { close(ends[0]); close(ends[1]) }
        let read = fcntl(ends[0], F_DUPFD_CLOEXEC, floor + 1)
        let write = fcntl(ends[1], F_DUPFD_CLOEXEC, floor + 1)
        guard read >= 0, write >= 0 else {
            if read >= 0 { close(read) }
            if write >= 0 { close(write) }
            return nil
        }
        return (read, write)
    }

    /// Pipes, not sockets: plain write and read (the agent's socket code uses send and recv).
    private static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer) -> Bool {
        AgentClient.untilDone(raw.count) { offset in write(fd, raw.baseAddress! + offset, raw.count - offset) }
    }

    private static func readAll(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        AgentClient.untilDone(buffer.count) { offset in read(fd, buffer.baseAddress! + offset, buffer.count - offset) }
    }

    /// One line (at most 4 KiB) from `fd`, or nil at end of file or after the timeout.
    private static func readLine(_ fd: Int32, timeoutMilliseconds: Int32) -> String? {
        var bytes: [UInt8] = []
        var waited: Int32 = 0
        while bytes.count < 4096 && waited < timeoutMilliseconds {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 500)
            if ready == 0 { waited += 500; continue }
            if ready < 0 && errno == EINTR { continue }
            var byte: UInt8 = 0
            let got = read(fd, &byte, 1)
            if got < 0 && errno == EINTR { continue }
            guard got == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
        return nil
    }
}
