public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (`Type=notify`; sd_notify(3)), which
/// swift-service-lifecycle does not speak: one datagram of `KEY=VALUE` lines to the Unix
/// socket named by `$NOTIFY_SOCKET` (a path, or with a leading `@` one in the abstract
/// namespace). Without the variable, nothing is sent.
public struct SystemdNotifier: Sendable {
    /// The socket's name as the variable gives it; nil: not run by systemd.
    public let socket: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socket = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The listener is up: `READY=1` with this process's id.
    @discardableResult
    public func ready() -> Bool { send("READY=1\nMAINPID=\(getpid())\n") }

    /// Shutting down.
    @discardableResult
    public func stopping() -> Bool { send("STOPPING=1\n") }

    /// Sends `state`; false when there is no socket or the datagram did not go (systemd
    /// then times the start out, which says more than a log line could).
    @discardableResult
    public func send(_ state: String) -> Bool {
        guard let socket else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socket.utf8)
        // Abstract namespace: the name starts with a NUL byte, and its length is exact.
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            if !abstract { raw[path.count] = 0 }
        }
        let length = socklen_t(MemoryLayout.offset(of: \sockaddr_un.sun_path)! + path.count + (abstract ? 0 : 1))
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), target, length) }
            }
        }
        return sent == bytes.count
    }
}
