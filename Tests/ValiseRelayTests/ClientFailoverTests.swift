import NIOCore
import Synchronization
import Testing
import ValiseClient
import ValiseDirectory
@testable import ValiseRelay
import ValiseCrypto
import ValiseStore

/// A relay of several nodes (addresses) on one shared store: a client moves past a node that
/// cannot serve (docs/PROTOCOL.md, "unavailable").
@Suite("Client: the next address of a relay")
struct ClientFailoverTests {
    @Test("a first address answering UNAVAILABLE makes the client use the second; when every address fails, the error names each")
    func nextAddress() async throws {
        let first = try SharedRelayFixture()
        let second = try SharedRelayFixture(sibling: first)
        let firstPort = try await first.start()
        let secondPort = try await second.start()
        first.store.failing.withLock { $0 = true }
        first.store.announce(.unavailable)
        _ = try await eventually("the first node stops serving") { first.server.node?.isAvailable == false ? true : nil }

        let record = RelayPublicFile(noiseKey: first.keys.noise.publicKey, signingKey: first.keys.signing).record(name: "hq", address: "127.0.0.1:\(firstPort)")
        let target = DirectorySync.Target(
            relay: record, endpoints: [try .init("127.0.0.1:\(firstPort)"), try .init("127.0.0.1:\(secondPort)")])
        let answered = try await DirectorySync.withRelay(target, clientKey: first.alice.transport, timeout: .seconds(Int64(60))) { (_, welcome) throws(ClientError) in
            welcome.endpoint.port
        }
        #expect(answered == secondPort)

        // The second node loses the store too (rather than stopping it: a port freed under a
        // loaded test run may be taken by another test's relay, which drops this client's
        // handshake as a scanner's and makes the failure a timed-out handshake).
        second.store.failing.withLock { $0 = true }
        second.store.announce(.unavailable)
        _ = try await eventually("the second node stops serving") { second.server.node?.isAvailable == false ? true : nil }
        let failed = await #expect(throws: ClientError.self) {
            try await DirectorySync.withRelay(target, clientKey: first.alice.transport, timeout: .seconds(Int64(60))) { (_, welcome) throws(ClientError) in welcome.endpoint.port }
        }
        #expect(failed?.kind == .unreachable)
        #expect(failed?.message.contains("127.0.0.1:\(firstPort) answered UNAVAILABLE") == true, "\(String(describing: failed))")
        #expect(failed?.message.contains("127.0.0.1:\(secondPort) answered UNAVAILABLE") == true, "\(String(describing: failed))")
        await second.stop()
        await first.stop()
    }
}
