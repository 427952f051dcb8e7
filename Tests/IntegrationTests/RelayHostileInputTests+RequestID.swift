import Foundation
import Testing
import ValiseWire

// docs/PROTOCOL.md, "Relay protocol": a request that has an answer carries a non-zero id
// (0 is the relay's, for what it sends unasked); Fetch and Ack have none, and any id.
extension RelayHostileInputTests {
    @Test("request id 0 on a Ping (a request with an answer) is refused BAD_REQUEST and the connection closes; a Fetch with id 0 is served")
    func requestIDZero() throws {
        let world = try RelayWorld(members: ["alice@jakarta"])
        let (socket, greeted) = try world.admittedClient(from: "127.0.0.2")
        var client = greeted
        // A Fetch has no answer: its id 0 is what Valise sends, and the connection goes on.
        var fetch = WireClientMessage()
        fetch.fetch = WireFetch()
        var ping = WireClientMessage()
        ping.requestID = 7
        ping.ping = WirePing()
        #expect(socket.send(try client.seal(fetch) + client.seal(ping)))
        // The Pong, and the MailboxIdle the Fetch brings (its mailbox is empty), in either order.
        var answers: [WireRelayMessage] = []
        for _ in 0..<4 {
            guard let frame = socket.readFrame(within: 5) else { break }
            answers.append(try client.open(frame))
            let pong = answers.contains { if case .pong = $0.body { $0.requestID == 7 } else { false } }
            let idle = answers.contains { if case .mailboxIdle = $0.body { true } else { false } }
            if pong && idle { break }
        }
        #expect(answers.count == 2, "after a Fetch with id 0 and a Ping with id 7: \(answers)")

        var zero = WireClientMessage()
        zero.ping = WirePing()
        #expect(socket.send(try client.seal(zero)))
        let outcome = socket.waitForClose(within: 5)
        #expect(outcome.closed, "a Ping with request id 0 left the connection open")
        let last = try client.openAll(outcome.received)
        #expect(last.count == 1 && last.first?.error.code == .badRequest, "the relay's answer to a Ping with id 0: \(last)")
        #expect(last.first?.error.message.contains("request id") == true)
        try world.expectHealthy()
    }
}
