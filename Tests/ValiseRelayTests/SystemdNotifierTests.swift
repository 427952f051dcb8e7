import Foundation
import Testing
@testable import ValiseRelay
#if canImport(Glibc)
import Glibc
#endif

/// The sd_notify writer against a datagram socket the test binds, at a path and in the
/// abstract namespace; with no NOTIFY_SOCKET, nothing is sent.
@Suite("systemd readiness notifications")
struct SystemdNotifierTests {
    /// A bound datagram socket; `name` as NOTIFY_SOCKET gives it.
    final class Receiver {
        let fd: Int32
        let name: String

        init(name: String) throws {
            self.name = name
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var path = Array(name.utf8)
            let abstract = path.first == UInt8(ascii: "@")
            if abstract { path[0] = 0 }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: path) }
            let length = socklen_t(MemoryLayout.offset(of: \sockaddr_un.sun_path)! + path.count + (abstract ? 0 : 1))
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            try #require(bound == 0, "bind \(name): errno \(errno)")
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// The next datagram, or nil (bounded by the receive timeout).
        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
        }
    }

    @Test("READY=1 with MAINPID, then STOPPING=1, to a socket at a path")
    func path() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let receiver = try Receiver(name: directory + "/notify")
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.name])
        #expect(notifier.ready())
        #expect(receiver.receive() == "READY=1\nMAINPID=\(getpid())\n")
        #expect(notifier.stopping())
        #expect(receiver.receive() == "STOPPING=1\n")
    }

    @Test("a socket in the abstract namespace (@name)")
    func abstract() throws {
        let receiver = try Receiver(name: "@valise-notify-\(UUID())")
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.name]).ready())
        #expect(receiver.receive()?.hasPrefix("READY=1\n") == true)
    }

    @Test("without NOTIFY_SOCKET (or with it empty) nothing is sent")
    func unset() {
        #expect(SystemdNotifier(environment: [:]).socket == nil)
        #expect(!SystemdNotifier(environment: [:]).ready())
        #expect(!SystemdNotifier(environment: ["NOTIFY_SOCKET": ""]).ready())
    }
}
