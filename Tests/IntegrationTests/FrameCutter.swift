import Foundation
import ValiseWire

/// A proxy on 127.0.0.1 between a client and the relay that forwards the client's frames
/// whole (2-byte big-endian length, then the Noise message) and closes both sides right
/// after the client's `cutAfter`-th frame; the relay's bytes go back as they come. A sweep
/// over `cutAfter` ends a session at each of its steps. Every wait is bounded.
final class FrameCutter: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let target: Int
    private let cutAfter: Int
    private let lock = NSLock()
    private var stopped = false
    private var threads: [Thread] = []

    init(to target: Int, cutAfter: Int) throws {
        self.target = target
        self.cutAfter = cutAfter
        (listener, port) = try Loopback.listen("frame cutter")
        let acceptor = Thread { [self] in acceptLoop() }
        threads.append(acceptor)
        acceptor.start()
    }

    func stop() {
        lock.withLock { stopped = true }
        Glibc.close(listener)
        let deadline = Date().addingTimeInterval(5)
        while threads.contains(where: { !$0.isFinished }) && Date() < deadline { usleep(10_000) }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) == 1 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            let connection = Thread { [self] in forward(client) }
            lock.withLock { threads.append(connection) }
            connection.start()
        }
    }

    private func forward(_ client: Int32) {
        let relay = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer {
            Glibc.close(client)
            Glibc.close(relay)
        }
        var address = Loopback.address(port: target)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(relay, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return }
        var pending: [UInt8] = []
        // The client's cleartext preamble comes before its frames, and goes on as it came.
        var preambleLeft = Preamble.byteCount
        var frames = 0
        let deadline = Date().addingTimeInterval(30)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while frames < cutAfter && !isStopped && Date() < deadline {
            var descriptors = [pollfd(fd: client, events: Int16(POLLIN), revents: 0), pollfd(fd: relay, events: Int16(POLLIN), revents: 0)]
            guard poll(&descriptors, 2, 100) > 0 else { continue }
            if descriptors[1].revents != 0 {
                let count = recv(relay, &buffer, buffer.count, 0)
                guard count > 0, send(client, buffer, count, Int32(MSG_NOSIGNAL)) == count else { return }
            }
            if descriptors[0].revents != 0 {
                let count = recv(client, &buffer, buffer.count, 0)
                guard count > 0 else { return }
                pending += buffer[0..<count]
                if preambleLeft > 0 {
                    let preamble = Array(pending.prefix(preambleLeft))
                    guard send(relay, preamble, preamble.count, Int32(MSG_NOSIGNAL)) == preamble.count else { return }
                    pending.removeFirst(preamble.count)
                    preambleLeft -= preamble.count
                }
                // Whole frames only, up to the cut.
                while frames < cutAfter, pending.count >= 2, pending.count >= 2 + (Int(pending[0]) << 8 | Int(pending[1])) {
                    let size = 2 + (Int(pending[0]) << 8 | Int(pending[1]))
                    guard send(relay, Array(pending[0..<size]), size, Int32(MSG_NOSIGNAL)) == size else { return }
                    pending.removeFirst(size)
                    frames += 1
                }
            }
        }
        // Give the relay a moment to act on the last frame; the client sees nothing more.
        usleep(50_000)
    }
}
