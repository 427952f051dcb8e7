import Foundation
import ValiseWire

/// A raw TCP client bound to a source address of its own in 127/8, non-blocking, every wait
/// bounded, every write with MSG_NOSIGNAL (a closed peer is an error, never SIGPIPE).
final class HostileSocket {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    struct Outcome {
        /// The relay closed the connection (end of file, or reset).
        var closed = false
        var received: [UInt8] = []
        var seconds = 0.0
        var bytesSent = 0
    }

    private(set) var fd: Int32
    let source: String
    private var sawClose = false

    /// Connects from `source` to 127.0.0.1:`port`, waiting (bounded) unless `wait` is false,
    /// and then sends `preamble` (the cleartext bytes every client sends first; nil: none),
    /// so that what the tests send next reaches the framing and Noise layers.
    init(from source: String, to port: Int, wait: Bool = true, preamble: [UInt8]? = Preamble.client.bytes) throws {
        self.source = source
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        guard Self.withAddress(source, port: 0, { bind(fd, $0, $1) }) == 0 else {
            defer { close() }
            throw Failure("bind \(source): \(String(cString: strerror(errno)))")
        }
        let rc = Self.withAddress("127.0.0.1", port: port) { connect(fd, $0, $1) }
        guard rc == 0 || errno == EINPROGRESS else {
            defer { close() }
            throw Failure("connect from \(source): \(String(cString: strerror(errno)))")
        }
        if wait && !finishConnecting(within: 5) {
            close()
            throw Failure("connect from \(source) did not complete")
        }
        if wait, let preamble { send(preamble) }
    }

    private static func withAddress<T>(_ host: String, port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        _ = inet_pton(AF_INET, host, &address.sin_addr)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// Waits (bounded) for a non-blocking connect; whether it succeeded.
    func finishConnecting(within seconds: Double) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&descriptor, 1, Int32(seconds * 1000)) == 1 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0
    }

    /// Writes everything, waiting for room at most `seconds`; false on any error (the peer
    /// reset or closed) or if the time runs out.
    @discardableResult
    func send(_ bytes: [UInt8], within seconds: Double = 2) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                offset += count
                continue
            }
            guard count < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else { return false }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return false }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&descriptor, 1, Int32(min(left, 0.1) * 1000) + 1)
        }
        return true
    }

    /// Waits (bounded) until the socket can take more bytes.
    func waitWritable(milliseconds: Int32) {
        var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        _ = poll(&descriptor, 1, milliseconds)
    }

    /// Writes what fits now, without waiting: the count written, or -1 on an error.
    func sendSome(_ bytes: [UInt8]) -> Int {
        let count = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if count >= 0 { return count }
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1
    }

    /// Bytes readable now or within the wait (possibly none); nil once the peer closed.
    func readAvailable(waitMilliseconds: Int32) -> [UInt8]? {
        if sawClose { return nil }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, waitMilliseconds) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = recv(fd, &buffer, buffer.count, 0)
        if count > 0 { return Array(buffer[0..<count]) }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return [] }
        sawClose = true
        return nil
    }

    /// Reads until the relay closes or `seconds` pass.
    func waitForClose(within seconds: Double) -> Outcome {
        let started = Date()
        var outcome = Outcome()
        while Date().timeIntervalSince(started) < seconds {
            guard let chunk = readAvailable(waitMilliseconds: 10) else {
                outcome.closed = true
                break
            }
            outcome.received += chunk
        }
        outcome.seconds = Date().timeIntervalSince(started)
        return outcome
    }

    /// Reads one frame (length prefix and contents), or nil if it does not come in time.
    func readFrame(within seconds: Double) -> [UInt8]? {
        let deadline = Date().addingTimeInterval(seconds)
        guard let header = read(exactly: 2, until: deadline) else { return nil }
        return read(exactly: Int(header[0]) << 8 | Int(header[1]), until: deadline)
    }

    private func read(exactly count: Int, until deadline: Date) -> [UInt8]? {
        var bytes: [UInt8] = []
        while bytes.count < count && Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 10) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: count - bytes.count)
            let got = recv(fd, &buffer, buffer.count, 0)
            if got > 0 {
                bytes += buffer[0..<got]
            } else if got == 0 || !(errno == EAGAIN || errno == EINTR) {
                return nil
            }
        }
        return bytes.count == count ? bytes : nil
    }

    /// Sends `bytes` one at a time, `interval` apart, until the relay closes or `seconds`
    /// pass; whatever the relay sent meanwhile is collected.
    func dribble(_ bytes: [UInt8], interval: Double, within seconds: Double) -> Outcome {
        let started = Date()
        var outcome = Outcome()
        var next = 0
        var nextTime = started
        while Date().timeIntervalSince(started) < seconds {
            if next < bytes.count && Date() >= nextTime {
                guard send([bytes[next]], within: 0.1) else { break }
                next += 1
                nextTime = nextTime.addingTimeInterval(interval)
            }
            guard let chunk = readAvailable(waitMilliseconds: 10) else {
                outcome.closed = true
                break
            }
            outcome.received += chunk
        }
        if !outcome.closed {
            // A write that failed: the relay is gone; collect what it said before.
            let rest = waitForClose(within: 0.5)
            outcome.closed = rest.closed
            outcome.received += rest.received
        }
        outcome.seconds = Date().timeIntervalSince(started)
        outcome.bytesSent = next
        return outcome
    }

    /// Whether the relay has closed the connection (checked without waiting). Bytes the
    /// relay sent before closing (a BUSY notice) are read and dropped on the way.
    var isClosed: Bool {
        if sawClose { return true }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count > 0 { continue }
            if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { sawClose = true }
            return sawClose
        }
    }

    func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }

    deinit { close() }
}
