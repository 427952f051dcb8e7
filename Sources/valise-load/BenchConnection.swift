import Foundation
import NIOCore
import NIOPosix
import ValiseClient
import ValiseCrypto
import ValiseWire

/// One connection of the benchmark: the Noise handshake and the relay protocol driven by
/// callbacks on the channel's event loop. No task and no `await` per message: the load
/// generator shares the machine with the relay, so its own cost per message must stay
/// small, or the figures measure the client. Writes made while handling a read are
/// flushed once, when the read batch ends.
final class BenchConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Closed: Error, CustomStringConvertible {
        /// For summaries: `handshake`, `busy`, `relay-<error code>`, `timeout`, `closed`, `protocol`, `io`.
        let kind: String
        let reason: String
        var description: String { reason }
    }

    private var state: ClientConnectionState
    private var context: ChannelHandlerContext?
    private var welcomed: EventLoopPromise<Void>?
    /// Fulfilled by the relay's Welcome.
    private let welcome: EventLoopFuture<Void>
    private var nextRequestID: UInt64 = 1
    private var unflushed = false
    private var inRead = false

    /// Every relay message after the Welcome, on the event loop.
    var onMessage: ((WireRelayMessage) -> Void)?
    /// The end of a batch of reads: a good moment to write acknowledgements together.
    var onReadComplete: (() -> Void)?
    /// Why the connection ended, once it has.
    private(set) var closedReason: String?
    let eventLoop: any EventLoop

    private init(state: ClientConnectionState, eventLoop: any EventLoop) {
        self.state = state
        self.eventLoop = eventLoop
        let promise = eventLoop.makePromise(of: Void.self)
        welcomed = promise
        welcome = promise.futureResult
    }

    /// Connects, completes the handshake, says Hello and waits for the Welcome, each within
    /// `timeout`. A failure after the connect throws `Closed`, which says what kind it was.
    static func open(
        host: String, port: Int, clientKey: AgreementPrivateKey, relayKey: AgreementPublicKey, on eventLoop: any EventLoop,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> BenchConnection {
        let state = ClientConnectionState(
            clientKey: clientKey, relayKey: relayKey, maximumMessageLength: ValiseTransport.defaultMaximumMessageLength)
        let connection = BenchConnection(state: state, eventLoop: eventLoop)
        let channel = try await ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(connection) }
            }
            .connect(host: host, port: port)
            .get()
        let welcome = eventLoop.flatSubmit {
            let timer = eventLoop.scheduleTask(in: timeout) { connection.end("no Welcome in time", kind: "timeout") }
            connection.welcome.whenComplete { _ in timer.cancel() }
            return connection.welcome
        }
        do {
            try await welcome.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return connection
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelActive(context: ChannelHandlerContext) {
        perform(state.start())
        flush()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        inRead = true
        perform(state.receive(bytes))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inRead = false
        onReadComplete?()
        flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        end("the relay closed the connection", kind: "closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end("connection error: \(error)", kind: "io")
        context.close(promise: nil)
    }

    /// Sends a request (written now, flushed at the end of the current read batch, or at
    /// once outside one); returns its request id.
    @discardableResult
    func send(_ body: WireClientMessage.OneOf_Body) -> UInt64 {
        eventLoop.preconditionInEventLoop()
        let id = nextRequestID
        nextRequestID += 1
        var message = WireClientMessage()
        message.requestID = id
        message.body = body
        perform(state.send(WireCodec.encode(message)))
        if !inRead { flush() }
        return id
    }

    func close() {
        eventLoop.execute { self.context?.close(promise: nil) }
    }

    private func flush() {
        guard unflushed, let context else { return }
        unflushed = false
        context.flush()
    }

    private func perform(_ actions: [ClientConnectionState.Action]) {
        for action in actions {
            switch action {
            case .write(let bytes):
                guard let context else { return }
                context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                unflushed = true
            case .established:
                var hello = WireHello()
                hello.protocolVersion = WireCodec.protocolVersion
                hello.software = "valise-load \(ValiseVersion.string)"
                send(.hello(hello))
            case .deliver(let bytes):
                guard let message = try? WireCodec.decodeRelayMessage(bytes) else {
                    end("the relay sent a message that does not decode", kind: "protocol")
                    context?.close(promise: nil)
                    return
                }
                if let welcomed {
                    self.welcomed = nil
                    switch message.body {
                    case .welcome?:
                        welcomed.succeed()
                    case .error(let error)?:
                        // The relay says why before it closes (not admitted, shutting down).
                        welcomed.fail(Closed(kind: "relay-\(error.code)", reason: "the relay answered Hello with \(error)"))
                    default:
                        welcomed.fail(Closed(kind: "protocol", reason: "the relay answered Hello with \(message.body.map { "\($0)" } ?? "nothing")"))
                    }
                } else {
                    onMessage?(message)
                }
            case .close(let reason):
                end(reason.description, kind: reason == .busy ? "busy" : welcomed == nil ? "closed" : "handshake")
                context?.close(promise: nil)
            }
        }
    }

    private func end(_ reason: String, kind: String) {
        if closedReason == nil { closedReason = reason }
        welcomed?.fail(Closed(kind: kind, reason: reason))
        welcomed = nil
    }
}
