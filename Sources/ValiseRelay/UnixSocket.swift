import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The few POSIX calls the control socket needs on both ends: a Unix socket address, the
/// peer's user, whole reads and writes with a deadline.
enum UnixSocket {
    /// nil when `path` is too long for a Unix socket.
    static func address(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    static func withAddress<T>(_ address: sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = address
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// The connected peer's user id (SO_PEERCRED; Glibc hides `struct ucred` behind
    /// _GNU_SOURCE, so it is read by its layout: pid, uid, gid).
    static func peerUID(_ fd: Int32) -> uid_t? {
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, UInt32.max, UInt32.max)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, length == 12 else { return nil }
        return credentials.uid
    }

    /// Reads and writes on `fd` give up after `seconds`.
    static func setTimeouts(_ fd: Int32, seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let done = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if done < 0 && errno == EINTR { continue }
            guard done > 0 else { return false }
            offset += done
        }
        return true
    }

    /// Bytes up to the first newline (left out), at most `maximum`; nil on a longer line,
    /// the end of the stream before a newline, an error or the timeout.
    static func readLine(_ fd: Int32, maximum: Int) -> [UInt8]? {
        var line: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            if let newline = chunk[..<count].firstIndex(of: 0x0A) {
                line += chunk[..<newline]
                return line.count <= maximum ? line : nil
            }
            line += chunk[..<count]
            guard line.count <= maximum else { return nil }
        }
    }
}
