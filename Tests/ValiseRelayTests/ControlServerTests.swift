import Foundation
import Testing
@testable import ValiseRelay
#if canImport(Glibc)
import Glibc
#endif

/// The control socket's framing, bounds and lifecycle, with a handler the test supplies.
@Suite("Control socket")
struct ControlServerTests {
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("control-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    func start() throws -> ControlServer {
        try ControlServer(path: ControlProtocol.socketPath(directory: directory)) { request in
            ControlResponse(results: (request.ids ?? []).map { ControlResult(id: $0, outcome: request.command.rawValue) })
        }
    }

    /// Sends raw bytes and reads the answer line.
    func exchange(_ bytes: [UInt8]) throws -> ControlResponse? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        let address = try #require(UnixSocket.address(ControlProtocol.socketPath(directory: directory)))
        try #require(UnixSocket.withAddress(address) { connect(fd, $0, $1) } == 0)
        UnixSocket.setTimeouts(fd, seconds: 5)
        _ = UnixSocket.writeAll(fd, bytes)
        shutdown(fd, Int32(SHUT_WR))
        return UnixSocket.readLine(fd, maximum: 1 << 20).flatMap { try? JSONDecoder().decode(ControlResponse.self, from: Data($0)) }
    }

    @Test("a request is answered; the socket is mode 0600 and goes at stop; a stale one is replaced")
    func lifecycle() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = ControlProtocol.socketPath(directory: directory)
        // A crashed relay's socket file.
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        let server = try start()
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        let response = try ControlClient.ask(directory: directory, ControlRequest(command: .hold, ids: ["ab"]))
        #expect(response.results == [ControlResult(id: "ab", outcome: "hold")])
        server.stop()
        #expect(!FileManager.default.fileExists(atPath: path))
        do {
            _ = try ControlClient.ask(directory: directory, ControlRequest(command: .status))
            Issue.record("answered with no server")
        } catch {
            #expect(error.notRunning && error.description.contains("no running relay on \(directory)"))
        }
    }

    @Test("another version, a request that is not one, an oversized line: an error each, and the server goes on")
    func refusals() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try start()
        defer { server.stop() }
        #expect(try exchange(Array("{\"version\":2,\"command\":\"status\"}\n".utf8))?.error?.contains("version 2") == true)
        #expect(try exchange(Array("{\"version\":1,\"command\":\"explode\"}\n".utf8))?.error == "the request is not a control request")
        #expect(try exchange([UInt8](repeating: 0x20, count: ControlProtocol.maximumRequestBytes + 10) + [0x0A])?.error?.contains("at most") == true)
        #expect(try exchange(Array("{\"version\":1,\"command\":\"status\"}".utf8))?.error?.contains("no request line") == true, "no newline before the end")
        #expect(try ControlClient.ask(directory: directory, ControlRequest(command: .release, ids: ["x"])).results?.first?.outcome == "release")
    }
}
