import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
public import ValiseCrypto
import ValiseNetwork
public import ValiseWire

/// A connection to a relay: the hybrid Noise_XKhfs handshake with the relay's pinned key, then
/// request and answer. The relay's unsolicited messages (a revocation notice, later
/// deliveries) arrive on `unsolicited`. Errors are `ClientError`s saying what happened.
public final class RelayClient: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<RelayClientHandler>
    private let nextID = NIOLockedValueBox<UInt64>(0)
    public let unsolicited: AsyncStream<WireRelayMessage>

    private init(channel: any Channel, handler: NIOLoopBound<RelayClientHandler>, unsolicited: AsyncStream<WireRelayMessage>) {
        self.channel = channel
        self.handler = handler
        self.unsolicited = unsolicited
    }

    /// Connects, completes the handshake and says Hello. Fails if the relay does not prove
    /// it holds `relayKey`, refuses this client's key, or takes longer than `timeout`.
    public static func connect(
        host: String, port: Int, clientKey: AgreementPrivateKey, relayKey: AgreementPublicKey,
        timeout: TimeAmount = .seconds(10), maximumMessageLength: Int = ValiseTransport.defaultMaximumMessageLength,
        group: (any EventLoopGroup)? = nil
    ) async throws(ClientError) -> (client: RelayClient, welcome: WireWelcome) {
        let group = group ?? MultiThreadedEventLoopGroup.singleton
        let (stream, continuation) = AsyncStream<WireRelayMessage>.makeStream()
        // The handler is captured as it is added: a relay that drops the connection at once
        // (the wrong key) must still be explained by the handler's state, not by a failed lookup.
        let added = NIOLockedValueBox<NIOLoopBound<RelayClientHandler>?>(nil)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let state = ClientConnectionState(clientKey: clientKey, relayKey: relayKey, maximumMessageLength: maximumMessageLength)
                        let handler = RelayClientHandler(state: state, unsolicited: continuation)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        added.withLockedValue { $0 = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            let failure = ConnectionFailure(error, host: host, port: port)
            var unreachable = ClientError(kind: .unreachable, code: "relay-unreachable", message: "cannot connect to the relay: \(failure.sentence)")
            unreachable.unreachable = (failure.description, failure.hint)
            throw unreachable
        }
        guard let handler = added.withLockedValue({ $0 }) else {
            throw ClientError(kind: .unreachable, code: "relay-unreachable", message: "the connection to the relay at \(host):\(port) closed at once; is valised running?")
        }
        let client = RelayClient(channel: channel, handler: handler, unsolicited: stream)
        do {
            let established = channel.eventLoop.flatSubmit { handler.value.established }
            try await established.withTimeout(timeout, on: channel.eventLoop).get()
        } catch {
            await client.close()
            throw Self.explain(error, host: host, port: port)
        }
        var hello = WireHello()
        hello.protocolVersion = WireCodec.protocolVersion
        hello.software = "valise \(ValiseVersion.string)"
        let answer = try await client.request(.hello(hello), timeout: timeout)
        guard case .welcome(let welcome) = answer.body else {
            await client.close()
            throw .failure("relay-protocol", "the relay answered Hello with something other than Welcome")
        }
        do {
            try checkRole(welcome)
        } catch {
            await client.close()
            throw error
        }
        return (client, welcome)
    }

    /// The roles of relay protocol version 3 (docs/PROTOCOL.md, "Relay protocol").
    static let knownRoles: Set<WireWelcome.Role> = [.device, .admin, .revoked, .notHome]

    /// A role this client does not know may allow less than it would assume (a newer
    /// relay's): refused, never guessed at.
    static func checkRole(_ welcome: WireWelcome) throws(ClientError) {
        guard knownRoles.contains(welcome.role) else {
            throw .failure("relay-protocol", "the relay admitted this device in a role this client does not know (\(welcome.role.rawValue)); a newer valise may be needed")
        }
    }

    /// Sends a request and waits for its answer. An error answer from the relay throws.
    public func request(_ body: WireClientMessage.OneOf_Body, timeout: TimeAmount = .seconds(30)) async throws(ClientError) -> WireRelayMessage {
        try await Self.answer(start(body, timeout: timeout))
    }

    /// Starts a request without waiting for its answer. Requests started one after another
    /// from one task go out in that order, so that several can be in flight (blob parts);
    /// `answer(_:)` waits for each.
    func start(_ body: WireClientMessage.OneOf_Body, timeout: TimeAmount = .seconds(30)) -> EventLoopFuture<WireRelayMessage> {
        let id = nextID.withLockedValue { $0 += 1; return $0 }
        var building = WireClientMessage()
        building.requestID = id
        building.body = body
        let message = building
        let handler = self.handler
        return channel.eventLoop.flatSubmit { handler.value.send(message) }.withTimeout(timeout, on: channel.eventLoop)
    }

    /// The answer to a request `start` sent; an error answer from the relay throws.
    static func answer(_ future: EventLoopFuture<WireRelayMessage>) async throws(ClientError) -> WireRelayMessage {
        let answer: WireRelayMessage
        do {
            answer = try await future.get()
        } catch {
            throw Self.explain(error, host: nil, port: nil)
        }
        if case .error(let error) = answer.body { throw Self.relayError(error) }
        return answer
    }

    /// Sends a message that has no answer (Fetch, Ack): request id 0, nothing awaited.
    public func post(_ body: WireClientMessage.OneOf_Body) async throws(ClientError) {
        var building = WireClientMessage()
        building.body = body
        let message = building
        let handler = self.handler
        do {
            try await channel.eventLoop.submit { try handler.value.post(message) }.get()
        } catch {
            throw Self.explain(error, host: nil, port: nil)
        }
    }

    public func close() async {
        try? await channel.close()
    }

    static func relayError(_ error: WireError) -> ClientError {
        let kind: ClientError.Kind = switch error.code {
        case .notAdmitted, .revoked: .verification
        // A Hello of another relay protocol version: the same exit as the VERSION notice.
        case .unsupportedVersion: .otherVersion
        // That node of the relay cannot reach its store: as good as unreachable (another
        // address of the relay, or later).
        case .unavailable: .unreachable
        default: .failure
        }
        return ClientError(kind: kind, code: "relay-\(error.code)", message: "the relay refused: \(error.message)")
    }

    /// What a client says when the handshake ends without proof of the pinned key and
    /// without a notice: it cannot tell an impostor from a cut connection, so it says both,
    /// loudly, and never mixes it with "busy" or "another version".
    public static let notProvenMessage = "the relay did not prove the key the directory names for it: an impostor, or the connection was cut"

    static func explain(_ error: any Error, host: String?, port: Int?) -> ClientError {
        if let error = error as? ClientError { return error }
        if let closed = error as? RelayClientHandler.Closed {
            if let refusal = closed.error { return relayError(refusal) }
            // The relay's notices are unauthenticated: reported as what it said, nothing more.
            switch closed.notice {
            case .busy?:
                return ClientError(kind: .busy, code: "relay-busy", message: "the relay is busy (at its connection limits); try again later")
            case .otherVersion(let relay, let client)?:
                return ClientError(
                    kind: .otherVersion, code: "relay-version", message: "the relay speaks protocol version \(relay); this client speaks version \(client)")
            default:
                break
            }
            if closed.duringHandshake {
                return ClientError(kind: .verification, code: "relay-handshake", message: notProvenMessage)
            }
            return .failure("relay-closed", "the relay closed the connection: \(closed.reason)")
        }
        if error is TimeoutError {
            return .failure("relay-timeout", "the relay did not answer in time")
        }
        // The system's or NIO's words never reach a person as they are.
        return .failure("relay-io", "the connection to the relay failed: \(ConnectionFailure.words(for: error))")
    }
}

struct TimeoutError: Error {}

extension ClientError {
    /// The connection to the relay failed or ended (as opposed to the relay refusing a
    /// request, or a handshake that proved the wrong relay): worth trying again later.
    public var isConnectionLost: Bool {
        ["relay-unreachable", "relay-busy", "relay-timeout", "relay-io", "relay-closed", "relay-unavailable"].contains(code)
    }
}

extension EventLoopFuture where Value: Sendable {
    /// Fails with `TimeoutError` if the future has not completed after `timeout`.
    func withTimeout(_ timeout: TimeAmount, on loop: any EventLoop) -> EventLoopFuture<Value> {
        let promise = loop.makePromise(of: Value.self)
        let timer = loop.scheduleTask(in: timeout) { promise.fail(TimeoutError()) }
        whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }
}

/// The client side of a connection on its event loop: `ClientConnectionState` for Noise and
/// framing, and a table of requests waiting for their answers.
final class RelayClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Closed: Error {
        let reason: String
        /// The relay's last error message, when it said why.
        let error: WireError?
        /// Whether the handshake had not completed: a relay that does not hold the pinned
        /// key drops the connection without a word.
        var duringHandshake = false
        /// The relay's cleartext notice (busy, another version), when it sent one.
        var notice: ClientConnectionState.Reason?
    }

    private var state: ClientConnectionState
    private let unsolicited: AsyncStream<WireRelayMessage>.Continuation
    private var context: ChannelHandlerContext?
    private var establishedPromise: EventLoopPromise<Void>?
    private var pending: [UInt64: EventLoopPromise<WireRelayMessage>] = [:]
    private var lastError: WireError?
    private var closedReason: String?
    /// A notice the relay sent instead of its handshake reply.
    private var notice: ClientConnectionState.Reason?
    /// Whether the handshake completed (the state machine forgets it once closed).
    private var wasEstablished = false

    init(state: ClientConnectionState, unsolicited: AsyncStream<WireRelayMessage>.Continuation) {
        self.state = state
        self.unsolicited = unsolicited
    }

    var established: EventLoopFuture<Void> {
        guard let context else { return MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(Closed(reason: "not connected", error: nil)) }
        if state.isEstablished { return context.eventLoop.makeSucceededVoidFuture() }
        if closedReason != nil {
            return context.eventLoop.makeFailedFuture(closed)
        }
        let promise = establishedPromise ?? context.eventLoop.makePromise()
        establishedPromise = promise
        return promise.futureResult
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(state.start(), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        perform(state.receive(buffer.readBytes(length: buffer.readableBytes) ?? []), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(closedReason ?? "the connection ended")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(ConnectionFailure.words(for: error))
        context.close(promise: nil)
    }

    func send(_ message: WireClientMessage) -> EventLoopFuture<WireRelayMessage> {
        guard let context else { return MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(Closed(reason: "not connected", error: nil)) }
        if closedReason != nil {
            return context.eventLoop.makeFailedFuture(closed)
        }
        let promise = context.eventLoop.makePromise(of: WireRelayMessage.self)
        pending[message.requestID] = promise
        perform(state.send(WireCodec.encode(message)), context: context)
        return promise.futureResult
    }

    func post(_ message: WireClientMessage) throws {
        guard let context else { throw Closed(reason: "not connected", error: nil) }
        if closedReason != nil { throw closed }
        perform(state.send(WireCodec.encode(message)), context: context)
    }

    private func perform(_ actions: [ClientConnectionState.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .write(let bytes):
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            case .established:
                wasEstablished = true
                establishedPromise?.succeed()
                establishedPromise = nil
            case .deliver(let bytes):
                guard let message = try? WireCodec.decodeRelayMessage(bytes) else {
                    finish("the relay sent a message that does not decode")
                    context.close(promise: nil)
                    return
                }
                if let promise = pending.removeValue(forKey: message.requestID), message.requestID != 0 {
                    promise.succeed(message)
                } else {
                    if case .error(let error) = message.body { lastError = error }
                    unsolicited.yield(message)
                }
            case .close(let reason):
                switch reason {
                case .busy, .otherVersion: notice = reason
                default: break
                }
                finish(reason.description)
                context.close(promise: nil)
            }
        }
    }

    /// How the connection ended, for whoever asks after.
    private var closed: Closed {
        Closed(reason: closedReason ?? "the connection ended", error: lastError, duringHandshake: !wasEstablished, notice: notice)
    }

    private func finish(_ reason: String) {
        if closedReason == nil { closedReason = reason }
        let closed = self.closed
        establishedPromise?.fail(closed)
        establishedPromise = nil
        for promise in pending.values { promise.fail(closed) }
        pending.removeAll()
        unsolicited.finish()
    }
}
