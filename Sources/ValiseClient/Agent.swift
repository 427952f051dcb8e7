#if canImport(Glibc)
import Glibc
#endif
public import ValiseCrypto
import ValiseDirectory
import ValiseStore

/// `valise agent`: holds a device's unlocked keys for a login session, like ssh-agent, so
/// that the passphrase is typed once. It listens on a Unix socket in a directory of the
/// Valise home that only its owner may enter (0700), answers only processes of its own
/// user (checked with SO_PEERCRED on every connection), and exits, wiping what it holds,
/// after an idle timeout or on SIGINT/SIGTERM.
///
/// Protocol (one request per connection): the client sends `u8 op`; op 1 (get) is answered
/// `u8 0 ‖ u32 length ‖ device payload` (docs/PROTOCOL.md, "Device payload"); op 2 (save)
/// is followed by `u32 length ‖ payload` and answered `u8 0` once the keystore is
/// rewritten under the passphrase the agent holds, or `u8 1 ‖ u32 length ‖ message`.
public enum AgentProtocol {
    static let get: UInt8 = 1
    static let save: UInt8 = 2
    static let maximumPayload = 64 * 1024
}

public final class AgentServer {
    public let home: ValiseHome
    private let passphrase: SecretBytes
    private var parameters: PasswordKDFParameters
    private var payload: SecretBytes
    public let idleTimeout: UInt64
    private var listener: Int32 = -1
    /// Set when the keystore has gone (the device wiped itself after its revocation).
    private var stopping = false

    public init(home: ValiseHome, passphrase: SecretBytes, idleTimeout: UInt64) throws(ClientError) {
        self.home = home
        self.passphrase = passphrase
        self.idleTimeout = idleTimeout
        let (payload, parameters, name) = try Self.load(home: home, passphrase: passphrase)
        self.payload = payload
        self.parameters = parameters
        self.memberName = name
        loadedVersion = Self.fileVersion(home.deviceKeyPath)
    }

    /// The keystore file's identity (inode, size, modification time): a command that
    /// rewrote it (`valise keys rotate`, `valise passwd`) makes the agent read it again.
    private var loadedVersion: [Int]

    private static func fileVersion(_ path: String) -> [Int] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        return [Int(info.st_ino), Int(info.st_size), info.st_mtim.tv_sec, info.st_mtim.tv_nsec]
    }

    private static func load(home: ValiseHome, passphrase: SecretBytes) throws(ClientError) -> (SecretBytes, PasswordKDFParameters, String) {
        let keystore = DeviceKeystore(home: home)
        let (identity, header) = try keystore.unlock(passphrase: passphrase)
        var current = identity
        if current.storeKeyIsNew {
            try keystore.save(current, passphrase: passphrase, parameters: header.parameters)
            current.storeKeyIsNew = false
        }
        return (current.encodePayload(), header.parameters, identity.memberName.value)
    }

    /// Reads the keystore again if a command rewrote it since.
    private func refresh(log: (String) -> Void) throws(ClientError) {
        let version = Self.fileVersion(home.deviceKeyPath)
        guard version != loadedVersion else { return }
        do {
            (payload, parameters, _) = try Self.load(home: home, passphrase: passphrase)
        } catch {
            throw ClientError(kind: error.kind, code: error.code, message: "the keystore changed since the agent started and \(error.message.prefix(1).lowercased() + error.message.dropFirst()); restart the agent")
        }
        loadedVersion = Self.fileVersion(home.deviceKeyPath)
        log("read the keystore again (a command rewrote it)")
    }

    public let memberName: String

    public var socketPath: String { home.agentSocketPath }

    /// Creates the socket (replacing a stale one) in a fresh 0700 directory.
    public func listen() throws(ClientError) {
        let directory = SecureFile.parent(of: socketPath)
        do {
            try SecureFile.preparePrivateDirectory(directory)
        } catch {
            throw ClientError(error)
        }
        try Self.checkNoneRunning(home: home)
        unlink(socketPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .failure("agent-socket", "cannot create the agent's socket: \(String(cString: strerror(errno)))") }
        var address = try Self.address(socketPath)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(socketPath, 0o600) == 0, Glibc.listen(fd, 8) == 0 else {
            close(fd)
            throw .failure("agent-socket", "cannot listen on \(socketPath): \(String(cString: strerror(errno)))")
        }
        listener = fd
    }

    /// Refuses when an agent already serves `home` (checked again before listening; asked
    /// first so that nobody types a passphrase for nothing).
    public static func checkNoneRunning(home: ValiseHome) throws(ClientError) {
        if AgentClient.isAlive(home.agentSocketPath) {
            throw .usage("agent-running", "an agent already serves this Valise home (\(home.agentSocketPath)); stop it first")
        }
    }

    static func address(_ path: String) throws(ClientError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .usage("agent-path", "the agent's socket path is too long for a Unix socket: \(path); use a shorter --home")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Serves until the idle timeout passes or `shouldStop` says so (a signal); then removes
    /// the socket. The held keys are wiped when the server is released.
    public func serve(now: () -> UInt64, shouldStop: () -> Bool, log: (String) -> Void) {
        var lastUsed = now()
        defer {
            close(listener)
            unlink(socketPath)
        }
        while !shouldStop() && !stopping {
            if now() >= lastUsed &+ idleTimeout {
                log("idle for \(idleTimeout) seconds: stopping and wiping the keys")
                return
            }
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 1000)
            guard ready > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            defer { close(client) }
            // One request gets 5 seconds in all, however slowly its bytes come.
            var timeout = timeval(tv_sec: 1, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            AgentClient.deadline = time(nil) + 5
            guard AgentClient.peerUID(client) == getuid() else {
                log("refused a connection from another user")
                continue
            }
            lastUsed = now()
            handle(client, log: log)
        }
    }

    private func handle(_ fd: Int32, log: (String) -> Void) {
        guard let op = AgentClient.readBytes(fd, 1)?.first else { return }
        switch op {
        case AgentProtocol.get:
            guard SecureFile.exists(home.deviceKeyPath) else {
                log("the keystore is gone (a revoked device wipes itself): stopping and wiping the keys")
                stopping = true
                return
            }
            do {
                try refresh(log: log)
            } catch {
                AgentClient.writeRefusal(fd, error.message)
                return
            }
            _ = AgentClient.writeAll(fd, [0] + AgentClient.lengthPrefix(payload.count))
            payload.withUnsafeBytes { raw in _ = AgentClient.writeAll(fd, raw) }
        case AgentProtocol.save:
            guard let secret = AgentClient.readSecret(fd) else { return }
            do {
                let identity = try DeviceIdentity(payload: secret)
                try DeviceKeystore(home: home).save(identity, passphrase: passphrase, parameters: parameters)
                payload = identity.encodePayload()
                loadedVersion = Self.fileVersion(home.deviceKeyPath)
                _ = AgentClient.writeAll(fd, [0])
                log("rewrote the keystore for a command")
            } catch let error as ClientError {
                AgentClient.writeRefusal(fd, error.message)
            } catch {
                AgentClient.writeRefusal(fd, "the payload is not a device payload")
            }
        default:
            return
        }
    }
}

/// The commands' side: asks a running agent for the unlocked keys.
public enum AgentClient {
    /// The unlocked device from this home's agent, or nil when no agent is running (a
    /// socket left by a dead agent counts as none). Refuses an agent of another user.
    public static func unlocked(home: ValiseHome) throws(ClientError) -> UnlockedDevice? {
        let path = home.agentSocketPath
        guard SecureFile.exists(path) else { return nil }
        do {
            try SecureFile.checkPrivateDirectory(SecureFile.parent(of: path))
        } catch {
            throw ClientError(error)
        }
        guard let fd = connectSocket(path) else { return nil }
        defer { close(fd) }
        guard peerUID(fd) == getuid() else {
            throw ClientError(kind: .verification, code: "agent-owner", message: "the agent socket \(path) belongs to another user; not used")
        }
        guard writeAll(fd, [AgentProtocol.get]), let status = readBytes(fd, 1)?.first else {
            throw .failure("agent-protocol", "the agent at \(path) did not answer as a Valise agent")
        }
        guard status == 0 else { throw .failure("agent-refused", "the agent: \(readMessage(fd))") }
        guard let payload = readSecret(fd) else {
            throw .failure("agent-protocol", "the agent at \(path) did not answer as a Valise agent")
        }
        let identity: DeviceIdentity
        do {
            identity = try DeviceIdentity(payload: payload)
        } catch {
            throw .failure("agent-protocol", "the agent handed over keys that do not parse (\(error.message))")
        }
        return UnlockedDevice(identity: identity) { (changed: DeviceIdentity) throws(ClientError) in
            try save(changed, path: path)
        }
    }

    private static func save(_ identity: DeviceIdentity, path: String) throws(ClientError) {
        guard let fd = connectSocket(path) else { throw .failure("agent-gone", "the agent stopped before the keystore could be saved") }
        defer { close(fd) }
        let payload = identity.encodePayload()
        guard writeAll(fd, [AgentProtocol.save] + lengthPrefix(payload.count)), payload.withUnsafeBytes({ writeAll(fd, $0) }),
              let status = readBytes(fd, 1)?.first
        else { throw .failure("agent-protocol", "the agent did not answer") }
        guard status == 0 else { throw .failure("agent-save", "the agent could not save the keystore: \(readMessage(fd))") }
    }

    /// `u32 length ‖ UTF-8`, at most 4 KiB.
    private static func readMessage(_ fd: Int32) -> String {
        guard let length = readLength(fd), length <= 4096, let bytes = readBytes(fd, length) else { return "no reason given" }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func isAlive(_ path: String) -> Bool {
        guard let fd = connectSocket(path) else { return false }
        close(fd)
        return true
    }

    static func connectSocket(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, var address = try? AgentServer.address(path) else { return nil }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func peerUID(_ fd: Int32) -> uid_t? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Linux; Glibc hides it from Swift
        // behind _GNU_SOURCE, so it is read by layout).
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, UInt32.max, UInt32.max)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, length == 12 else { return nil }
        return credentials.uid
    }

    static func lengthPrefix(_ count: Int) -> [UInt8] {
        var writer = ByteWriter(capacity: 4)
        writer.write(UInt32(count))
        return writer.bytes
    }

    /// A refused request's answer: `u8 1 ‖ u32 length ‖ UTF-8 message`.
    static func writeRefusal(_ fd: Int32, _ message: String) {
        let text = Array(message.utf8)
        _ = writeAll(fd, [1] + lengthPrefix(text.count) + text)
    }

    /// A `u32` length prefix.
    static func readLength(_ fd: Int32) -> Int? {
        readBytes(fd, 4).map { header in Int(header.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer) -> Bool {
        untilDone(raw.count) { offset in send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL)) }
    }

    /// Repeats `step` (one read or write of what is left after `offset` bytes, returning its
    /// count) until `count` bytes are through, again after an interrupted call; false at
    /// the end of the stream or on an error.
    static func untilDone(_ count: Int, _ step: (_ offset: Int) -> Int) -> Bool {
        var offset = 0
        while offset < count {
            let done = step(offset)
            if done < 0 && errno == EINTR { continue }
            guard done > 0 else { return false }
            offset += done
        }
        return true
    }

    static func readBytes(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBytes { readAll(fd, $0) }
        return ok ? bytes : nil
    }

    /// `u32 length ‖ bytes`, read straight into guarded memory.
    static func readSecret(_ fd: Int32) -> SecretBytes? {
        guard let length = readLength(fd), length > 0, length <= AgentProtocol.maximumPayload else { return nil }
        var ok = false
        let secret = SecretBytes(count: length) { buffer in ok = readAll(fd, buffer) }
        return ok ? secret : nil
    }

    /// When the current request must be over (the agent serves one at a time).
    nonisolated(unsafe) static var deadline: time_t = .max

    private static func readAll(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        untilDone(buffer.count) { offset in
            time(nil) < deadline ? recv(fd, buffer.baseAddress! + offset, buffer.count - offset, 0) : 0
        }
    }
}
