import Foundation
import Testing
import ValiseWire

/// The relay's abuse limits against a real `valised`: each is tripped by a client connecting
/// from 127.0.0.2, while a well-behaved client from 127.0.0.1 goes on unaffected, and each
/// is counted in `valised status`.
@Suite("Relay: abuse limits (real valised)", .serialized)
struct AbuseLimitTests {
    /// The limits' counts as `valised status --json` shows them.
    static func limitCount(_ status: [String: Any], _ name: String) -> Int? {
        ((status["limits"] as? [String: Any])?["counts"] as? [String: Any])?[name] as? Int
    }

    /// A Send of `envelopeBytes` bytes to `recipient`, as a raw client writes it.
    static func sendMessage(_ requestID: UInt64, to recipient: String, envelopeBytes: Int = 6) -> WireClientMessage {
        var message = WireClientMessage()
        message.requestID = requestID
        var send = WireSend()
        send.id = Data(QueueFixture.id())
        send.recipient = recipient
        send.precedence = .routine
        send.ttl = .default
        send.envelope = Data(repeating: 0x42, count: envelopeBytes)
        message.send = send
        return message
    }

    /// `requests` (each with its own request id), written in one go on an admitted raw
    /// connection, and the relay's answer to each, in the order of the requests: refusals
    /// made at once overtake Sends waiting for the store.
    static func exchange(
        _ socket: HostileSocket, _ client: inout NoiseClient, _ requests: [WireClientMessage]
    ) throws -> [WireRelayMessage.OneOf_Body?] {
        var frames: [UInt8] = []
        for request in requests { frames += try client.seal(request) }
        guard socket.send(frames, within: 10) else { throw HostileSocket.Failure("the requests were not written") }
        var answers: [UInt64: WireRelayMessage.OneOf_Body?] = [:]
        for _ in requests {
            guard let frame = socket.readFrame(within: 10) else { throw HostileSocket.Failure("an answer is missing") }
            let answer = try client.open(frame)
            answers[answer.requestID] = answer.body
        }
        return try requests.map { request in
            guard let answer = answers[request.requestID] else { throw HostileSocket.Failure("no answer to request \(request.requestID)") }
            return answer
        }
    }

    /// The error code of an answer, nil if it is not an error.
    static func errorCode(_ body: WireRelayMessage.OneOf_Body?) -> WireErrorCode? {
        if case .error(let error)? = body { return error.code }
        return nil
    }

    /// `count` Sends to `recipient`, written in one go on an admitted raw connection, and
    /// the answers: how many were Accepted and how many RATE_LIMITED.
    static func burst(
        _ socket: HostileSocket, _ client: inout NoiseClient, count: Int, to recipient: String, envelopeBytes: Int = 6
    ) throws -> (accepted: Int, limited: Int, other: [String]) {
        let sends = (0..<count).map { sendMessage(UInt64(100 + $0), to: recipient, envelopeBytes: envelopeBytes) }
        var (accepted, limited, other) = (0, 0, [String]())
        for body in try exchange(socket, &client, sends) {
            switch body {
            case .accepted?: accepted += 1
            case .error(let error)? where error.code == .rateLimited: limited += 1
            case let body: other.append("\(String(describing: body))")
            }
        }
        return (accepted, limited, other)
    }

    /// The raw connection is still open and answered: a refusal is an answer, not a
    /// disconnection.
    static func expectAnswersPing(_ socket: HostileSocket, _ client: inout NoiseClient, sourceLocation: SourceLocation = #_sourceLocation) throws {
        var ping = WireClientMessage()
        ping.requestID = 999
        ping.ping = WirePing()
        #expect(socket.send(try client.seal(ping)), "the connection was closed", sourceLocation: sourceLocation)
        let pong = try #require(socket.readFrame(within: 5), "no answer to a ping after the refusals", sourceLocation: sourceLocation)
        guard case .pong? = try client.open(pong).body else {
            Issue.record("not a Pong", sourceLocation: sourceLocation)
            return
        }
    }

    /// A relay with `environment`, and Carol's device admitted on it from 127.0.0.2.
    static func abuser(_ environment: [String: String]) throws -> (RelayWorld, HostileSocket, NoiseClient) {
        let world = try RelayWorld(relayEnvironment: environment)
        let (socket, client) = try world.admittedClient(from: "127.0.0.2", member: "carol@nairobi")
        return (world, socket, client)
    }

    /// Alice, another device, from 127.0.0.1: five sends (to Bob unless told), each of which
    /// must be accepted.
    static func bystanderSends(_ world: RelayWorld, to recipient: String = "bob@jakarta", sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let alice = try await QueueDevice(world: world, member: "alice@jakarta")
        for _ in 0..<5 { try await alice.sendAccepted(QueueFixture.id(), to: recipient, sourceLocation: sourceLocation) }
        await alice.close()
    }

    @Test("send rate: a device past its burst is RATE_LIMITED and counted; another device sends on")
    func sendRate() async throws {
        var (world, socket, abuser) = try Self.abuser([
            "VALISED_LIMITS_SENDS_PER_SECOND_PER_DEVICE": "1", "VALISED_LIMITS_SEND_BURST_PER_DEVICE": "5",
        ])
        let answers = try Self.burst(socket, &abuser, count: 30, to: "bob@jakarta")
        #expect(answers.other.isEmpty, "answers other than Accepted or RATE_LIMITED: \(answers.other)")
        // The burst, and at most a token or two that refilled while the 30 were answered.
        #expect((5...7).contains(answers.accepted), "accepted \(answers.accepted) of 30 with a burst of 5")
        #expect(answers.accepted + answers.limited == 30)

        try await Self.bystanderSends(world)
        try await world.expectStatus("the refused sends were not counted") { Self.limitCount($0, "sendRate") == answers.limited }
        try Self.expectAnswersPing(socket, &abuser)
    }

    @Test("pending bytes: a connection with more envelope bytes waiting than allowed is read no further until they are committed; others unaffected")
    func pendingBytes() async throws {
        var (world, socket, abuser) = try Self.abuser(["VALISED_LIMITS_MAX_PENDING_BYTES": "4096"])
        // 40 envelopes of 4 KiB written at once (fewer than the 64 pending requests allowed,
        // so only the byte bound can hold reading): the relay holds reading once 4 KiB wait,
        // so they are committed a few at a time, and every one is still answered.
        let answers = try Self.burst(socket, &abuser, count: 40, to: "bob@jakarta", envelopeBytes: 4096)
        #expect(answers.accepted == 40, "accepted \(answers.accepted), limited \(answers.limited), other \(answers.other)")
        try await Self.bystanderSends(world)
        try await world.expectStatus("the held reads were not counted") {
            (Self.limitCount($0, "pendingRequests") ?? 0) > 0 && $0["envelopes"] as? Int == 45
        }
    }
}
