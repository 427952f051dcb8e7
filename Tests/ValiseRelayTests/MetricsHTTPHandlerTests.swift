import Foundation
import NIOCore
import NIOEmbedded
import Synchronization
import Testing
@testable import ValiseRelay

/// The metrics endpoint's pipeline (size bound, HTTP/1 codec, handler) on an EmbeddedChannel:
/// GET /metrics answers the exposition; other paths 404, other methods 405; a request past
/// the size bound 413; every answer closes the connection.
@Suite("Metrics endpoint: the HTTP/1 handler")
struct MetricsHTTPHandlerTests {
    static let exposition = "# TYPE valise_sends_accepted_total counter\nvalise_sends_accepted_total 3\n"

    struct Response {
        let status: Int
        let headers: [String: String]
        let body: String
    }

    /// Sends `request` in chunks of `chunk` bytes and reads everything the pipeline wrote.
    static func exchange(
        _ request: String, chunk: Int = .max, maximumRequestBytes: Int = MetricsRequestLimit.defaultMaximumBytes
    ) throws -> (response: Response?, closed: Bool, renders: Int) {
        let channel = EmbeddedChannel()
        let renders = RenderCount()
        try MetricsServer.configure(channel.pipeline.syncOperations, maximumRequestBytes: maximumRequestBytes) { loop in
            renders.add()
            return loop.makeSucceededFuture(Array(exposition.utf8))
        }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let bytes = Array(request.utf8)
        var offset = 0
        while offset < bytes.count, channel.isActive {
            let end = min(bytes.count, offset + chunk)
            try channel.writeInbound(ByteBuffer(bytes: bytes[offset..<end]))
            offset = end
        }
        channel.embeddedEventLoop.run()
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        let closed = !channel.isActive
        if channel.isActive { _ = try? channel.finish() }
        return (parse(text), closed, renders.value)
    }

    static func parse(_ text: String) -> Response? {
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let lines = text[..<split.lowerBound].split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1.1 "),
              let status = Int(statusLine.dropFirst(9).prefix(3)) else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    @Test("GET /metrics: 200, the exposition format 0.0.4, its length, and the connection closed")
    func metrics() throws {
        let (response, closed, renders) = try Self.exchange("GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n")
        let answer = try #require(response)
        #expect(answer.status == 200)
        #expect(answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(answer.headers["content-length"] == "\(Self.exposition.utf8.count)")
        #expect(answer.body == Self.exposition)
        #expect(closed, "one request per connection")
        #expect(renders == 1)
    }

    @Test("a query string is ignored; a request that arrives a byte at a time is answered once")
    func queryAndDribble() throws {
        let (response, closed, renders) = try Self.exchange("GET /metrics?name[]=x HTTP/1.1\r\nHost: h\r\n\r\n", chunk: 1)
        #expect(response?.status == 200 && response?.body == Self.exposition)
        #expect(closed && renders == 1)
    }

    @Test("another path: 404, nothing rendered", arguments: ["/", "/metrics/", "/Metrics", "/metricsx", "/../metrics"])
    func notFound(path: String) throws {
        let (response, closed, renders) = try Self.exchange("GET \(path) HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(response?.status == 404)
        #expect(closed && renders == 0)
    }

    @Test("another method on /metrics: 405 with Allow: GET", arguments: ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
    func methodNotAllowed(method: String) throws {
        let body = method == "POST" || method == "PUT" ? "content-length: 2\r\n\r\nhi" : "\r\n"
        let (response, closed, renders) = try Self.exchange("\(method) /metrics HTTP/1.1\r\nHost: h\r\n\(body)")
        #expect(response?.status == 405)
        #expect(response?.headers["allow"] == "GET")
        #expect(closed && renders == 0)
    }

    @Test("a request past the bound (long headers, or a body) gets 413 and is closed unparsed")
    func oversized() throws {
        let header = "X-Filler: " + String(repeating: "a", count: 9000) + "\r\n"
        let long = try Self.exchange("GET /metrics HTTP/1.1\r\nHost: h\r\n\(header)\r\n", chunk: 1024)
        #expect(long.response?.status == 413)
        #expect(long.closed && long.renders == 0)

        let body = String(repeating: "b", count: 600)
        let post = try Self.exchange(
            "GET /metrics HTTP/1.1\r\nHost: h\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)", chunk: 100, maximumRequestBytes: 512)
        #expect(post.response?.status == 413)
        #expect(post.closed && post.renders == 0)
    }

    @Test("not HTTP: 400 and closed")
    func garbage() throws {
        let (response, closed, renders) = try Self.exchange("\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\u{00}\u{01}\r\n\r\n")
        #expect(response?.status == 400)
        #expect(closed && renders == 0)
    }
}

/// Counts renders (the render closure must be Sendable).
final class RenderCount: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func add() { count.withLock { $0 += 1 } }
}
