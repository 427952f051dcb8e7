#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Testing
import ValiseNetwork

@Suite("ConnectionFailure: network errors in words")
struct ConnectionFailureTests {
    @Test("errno values become words with a hint")
    func errnoWords() {
        let refused = ConnectionFailure(IOError(errnoCode: ECONNREFUSED, reason: "connect"), host: "127.0.0.1", port: 1)
        #expect(refused.sentence == "nothing listens at 127.0.0.1:1; is valised running?")
        #expect(ConnectionFailure(IOError(errnoCode: EHOSTUNREACH, reason: "connect"), host: "10.9.9.9", port: 7400).description == "no route to 10.9.9.9")
        #expect(ConnectionFailure(IOError(errnoCode: ECONNRESET, reason: "read"), host: "h", port: 2).sentence == "the connection to h:2 was reset")
        #expect(ConnectionFailure(ChannelError.connectTimeout(.seconds(10)), host: "h", port: 3).description == "h:3 did not answer (timed out)")
    }

    @Test("an unknown error is not shown as its library's description")
    func unknownError() {
        struct Internal: Error, CustomStringConvertible { var description: String { "SingleConnectionFailure(internal)" } }
        let failure = ConnectionFailure(Internal(), host: "h", port: 5)
        #expect(failure.sentence == "the connection to h:5 failed")
        #expect(ConnectionFailure.words(for: Internal()) == "an unexpected network error")
        #expect(ConnectionFailure.words(for: IOError(errnoCode: ECONNRESET, reason: "read")) == "the connection was reset")
    }

    @Test("a real refused connection through NIO's Happy Eyeballs: the aggregate error is read")
    func realRefusal() async throws {
        // A port held bound but not listening: nothing listens there, and no other test's
        // server can take it meanwhile (a port bound and closed again could be reused).
        let (descriptor, port) = try Self.boundNotListening()
        defer { close(descriptor) }
        do {
            _ = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
            Issue.record("the connection was accepted")
        } catch {
            #expect(ConnectionFailure(error, host: "127.0.0.1", port: port).sentence == "nothing listens at 127.0.0.1:\(port); is valised running?")
        }
    }

    /// A TCP socket bound to a free port of 127.0.0.1 without listen(): connecting to it is refused.
    static func boundNotListening() throws -> (Int32, Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        try #require(named == 0)
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }
}
