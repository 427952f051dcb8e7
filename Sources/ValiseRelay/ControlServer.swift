import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Serves the control socket on a thread of its own, one connection at a time: operator
/// requests are rare, and each is bounded (its size, a timeout for each read and write).
/// Only the relay's own user is answered (SO_PEERCRED), on a socket of mode 0600 in the
/// relay's directory (itself 0700). The caller must hold `valised.lock`: a socket file
/// already there is then a crashed relay's, and is replaced.
public final class ControlServer: Sendable {
    public let path: String
    private let listener: Int32
    /// Written to once to stop the thread.
    private let stopPipe: (read: Int32, write: Int32)
    private let finished = DispatchSemaphore(value: 0)

    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Binds and listens; `handle` answers each request (on the server's thread).
    public init(path: String, handle: @escaping @Sendable (ControlRequest) -> ControlResponse) throws(StartError) {
        self.path = path
        guard let address = UnixSocket.address(path) else {
            throw StartError(description: "the control socket's path is too long for a Unix socket: \(path)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "cannot make the control socket: \(String(cString: strerror(errno)))") }
        // A socket left by a crashed relay (the caller holds the lock, so no relay runs).
        if unlink(path) != 0 && errno != ENOENT {
            close(fd)
            throw StartError(description: "cannot remove the old control socket \(path): \(String(cString: strerror(errno)))")
        }
        let bound = UnixSocket.withAddress(address) { bind(fd, $0, $1) }
        guard bound == 0, chmod(path, 0o600) == 0, listen(fd, 8) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            unlink(path)
            throw StartError(description: "cannot listen on the control socket \(path): \(reason)")
        }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            close(fd)
            unlink(path)
            throw StartError(description: "cannot make the control socket's stop pipe")
        }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        listener = fd
        stopPipe = (pipeEnds[0], pipeEnds[1])
        let (listener, stopRead, finished) = (fd, pipeEnds[0], self.finished)
        let thread = Thread {
            Self.serve(listener: listener, stop: stopRead, handle: handle)
            finished.signal()
        }
        thread.name = "valised control"
        thread.start()
    }

    /// Stops serving, waits for the thread, and removes the socket.
    public func stop() {
        _ = write(stopPipe.write, [1], 1)
        finished.wait()
        close(listener)
        close(stopPipe.read)
        close(stopPipe.write)
        unlink(path)
    }

    private static func serve(listener: Int32, stop: Int32, handle: (ControlRequest) -> ControlResponse) {
        while true {
            var pollers = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&pollers, 2, -1)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0, pollers[1].revents == 0 else { return }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            answer(client, handle: handle)
            close(client)
        }
    }

    private static func answer(_ client: Int32, handle: (ControlRequest) -> ControlResponse) {
        UnixSocket.setTimeouts(client, seconds: ControlProtocol.timeoutSeconds)
        guard UnixSocket.peerUID(client) == getuid() else {
            _ = UnixSocket.writeAll(client, ControlProtocol.line(ControlResponse(error: "the control socket answers the relay's own user only")))
            return
        }
        guard let line = UnixSocket.readLine(client, maximum: ControlProtocol.maximumRequestBytes) else {
            _ = UnixSocket.writeAll(
                client, ControlProtocol.line(ControlResponse(error: "no request line (at most \(ControlProtocol.maximumRequestBytes) bytes)")))
            return
        }
        let response: ControlResponse
        if let version = (try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])?["version"] as? Int,
           version != ControlProtocol.version {
            response = ControlResponse(error: "control protocol version \(version) is not spoken here (this relay speaks \(ControlProtocol.version))")
        } else if let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(line)) {
            response = handle(request)
        } else {
            response = ControlResponse(error: "the request is not a control request")
        }
        _ = UnixSocket.writeAll(client, ControlProtocol.line(response))
    }
}
