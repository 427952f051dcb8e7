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
        #expect(ConnectionFailure(SocketAddressError.unknown(host: "nowhere.invalid", port: 4), host: "nowhere.invalid", port: 4).description
            == "nowhere.invalid does not resolve")
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
        // A port that was bound and closed again: nothing listens there.
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        try await server.close()
        do {
            _ = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
            Issue.record("the connection was accepted")
        } catch {
            #expect(ConnectionFailure(error, host: "127.0.0.1", port: port).sentence == "nothing listens at 127.0.0.1:\(port); is valised running?")
        }
    }
}
