import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Asks a running relay over its control socket (`valised status`, `valised queue`).
public enum ControlClient {
    public struct Failure: Error, CustomStringConvertible {
        /// No relay listens there: the socket is missing or refuses.
        public let notRunning: Bool
        public let description: String
    }

    /// One request, one answer.
    public static func ask(directory: String, _ request: ControlRequest) throws(Failure) -> ControlResponse {
        let path = ControlProtocol.socketPath(directory: directory)
        guard let address = UnixSocket.address(path) else {
            throw Failure(notRunning: false, description: "the control socket's path is too long for a Unix socket: \(path)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(notRunning: false, description: "cannot make a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard UnixSocket.withAddress(address, { connect(fd, $0, $1) }) == 0 else {
            throw Failure(notRunning: true, description: "no running relay on \(directory) (control socket \(path): \(String(cString: strerror(errno))))")
        }
        UnixSocket.setTimeouts(fd, seconds: ControlProtocol.timeoutSeconds)
        guard UnixSocket.peerUID(fd) == getuid() else {
            throw Failure(notRunning: false, description: "the control socket \(path) belongs to another user; not used")
        }
        guard UnixSocket.writeAll(fd, ControlProtocol.line(request)),
              let line = UnixSocket.readLine(fd, maximum: ControlProtocol.maximumResponseBytes),
              let response = try? JSONDecoder().decode(ControlResponse.self, from: Data(line))
        else {
            throw Failure(notRunning: false, description: "the relay on \(directory) did not answer on its control socket")
        }
        return response
    }
}
