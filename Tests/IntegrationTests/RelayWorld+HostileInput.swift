import Foundation
import Testing
import ValiseCrypto
import ValiseWire

// What the hostile-input tests need of a RelayWorld: a health check, the log lines about one
// peer, bounded polling, and an admitted raw client.
extension RelayWorld {
    /// The relay still runs, and alice (on 127.0.0.1) still syncs with it.
    func expectHealthy(sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(relay.isRunning, "the relay stopped:\n\(relay.log)", sourceLocation: sourceLocation)
        let result = try sync("alice@jakarta")
        #expect(result.status == 0, "alice could not sync after the attack: \(result.stderr)", sourceLocation: sourceLocation)
    }

    /// The relay's log lines about connections from `peer`.
    func relayLog(peer: String) -> [Substring] {
        relay.log.split(separator: "\n").filter { line in
            line.split(separator: " ").contains { $0 == "peer=\(peer)" }
        }
    }

    /// Polls `condition` every 20 ms until it holds or `seconds` pass.
    func eventually(within seconds: Double = 2, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    /// A member's transport key (Alice's unless told) through the handshake, admitted and
    /// greeted (Hello, Welcome), from `source`, at the relay (or another node's `port`).
    func admittedClient(from source: String, member: String = "alice@jakarta", port: Int? = nil) throws -> (HostileSocket, NoiseClient) {
        try admittedClient(from: source, key: try transportKey(member), port: port)
    }

    /// Any transport key (an admin's, say) through the handshake, admitted and greeted, from `source`.
    func admittedClient(from source: String, key: AgreementPrivateKey, port: Int? = nil) throws -> (HostileSocket, NoiseClient) {
        var client = try NoiseClient(key: key, relayKey: try relayKey())
        let socket = try HostileSocket(from: source, to: port ?? relay.port)
        guard socket.send(try client.firstMessage()) else { throw HostileSocket.Failure("the first message was not sent") }
        guard let reply = socket.readFrame(within: 5) else { throw HostileSocket.Failure("no handshake reply") }
        guard socket.send(try client.finish(reply: reply)) else { throw HostileSocket.Failure("the third message was not sent") }
        var hello = WireClientMessage()
        hello.requestID = 1
        hello.hello = WireHello()
        hello.hello.protocolVersion = WireCodec.protocolVersion
        hello.hello.software = "hostile-input-tests"
        guard socket.send(try client.seal(hello)) else { throw HostileSocket.Failure("the Hello was not sent") }
        guard let frame = socket.readFrame(within: 5) else { throw HostileSocket.Failure("no Welcome") }
        let welcome = try client.open(frame)
        guard case .welcome = welcome.body else { throw HostileSocket.Failure("not a Welcome: \(welcome)") }
        return (socket, client)
    }
}

extension NoiseClient {
    /// `count` DirectoryFetch requests, sealed and framed, numbered from `nextID` on (which
    /// advances): a few dozen bytes each, which the relay answers with the whole directory.
    mutating func directoryFetches(_ count: Int, nextID: inout UInt64) throws -> [UInt8] {
        var fetch = WireClientMessage()
        fetch.directoryFetch = WireDirectoryFetch()
        var frames: [UInt8] = []
        for _ in 0..<count {
            fetch.requestID = nextID
            nextID += 1
            frames += try seal(fetch)
        }
        return frames
    }
}
