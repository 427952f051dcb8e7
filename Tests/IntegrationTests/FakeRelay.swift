import Foundation

/// A stand-in for a relay on 127.0.0.1 (port 0): for each connection it reads what the
/// client sends first (bounded), answers `answer` (possibly nothing), half-closes, and
/// closes once the client has gone or a bound passes. What a client makes of a relay that
/// says BUSY or VERSION, or that cannot prove the pinned key, without a relay of that kind.
final class FakeRelay: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let answer: [UInt8]
    private let lock = NSLock()
    private var stopped = false
    private var received: [[UInt8]] = []
    private var thread: Thread?

    init(answer: [UInt8]) throws {
        self.answer = answer
        (listener, port) = try Loopback.listen("fake relay")
        let acceptor = Thread { [self] in acceptLoop() }
        thread = acceptor
        acceptor.start()
    }

    var address: String { "127.0.0.1:\(port)" }

    /// What each connection sent before the answer.
    var firstBytes: [[UInt8]] { lock.withLock { received } }

    func stop() {
        lock.withLock { stopped = true }
        let deadline = Date().addingTimeInterval(5)
        while thread?.isFinished == false && Date() < deadline { usleep(10_000) }
        Glibc.close(listener)
    }

    deinit { stop() }

    /// A port on 127.0.0.1 with nothing listening: bound, then closed.
    static func unusedPort() throws -> Int {
        let relay = try FakeRelay(answer: [])
        let port = relay.port
        relay.stop()
        return port
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 50) == 1 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            serve(client)
        }
    }

    /// One connection at a time: the clients under test make one.
    private func serve(_ client: Int32) {
        defer { Glibc.close(client) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var first: [UInt8] = []
        // The preamble and the first handshake message come together: 8 + 2 + 1248 bytes.
        let deadline = Date().addingTimeInterval(2)
        while first.count < 1258 && Date() < deadline {
            var descriptor = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 20) == 1 else { continue }
            let count = recv(client, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            first += buffer[0..<count]
        }
        lock.withLock { received.append(first) }
        if !answer.isEmpty { _ = send(client, answer, answer.count, Int32(MSG_NOSIGNAL)) }
        // Half-close, then read until the client goes (bounded): closing with unread bytes
        // would reset the connection, and the answer could be lost with it.
        shutdown(client, Int32(SHUT_WR))
        let end = Date().addingTimeInterval(2)
        while Date() < end {
            var descriptor = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 20) == 1 else { continue }
            if recv(client, &buffer, buffer.count, 0) <= 0 { break }
        }
    }
}
