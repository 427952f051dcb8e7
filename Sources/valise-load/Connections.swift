import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseWire

extension ValiseLoad {
    struct Connections: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open many authenticated connections, hold them idle, then check they still answer.",
            discussion: """
                Opens --count connections with this device's key, --concurrency handshakes at a \
                time. A connection counts once the relay has admitted it (its Hello was \
                answered with Welcome). With all of them open, prints a line \
                {"event":"held",...} and holds them idle for --hold seconds (scripts/lib/\
                bench_connections.py reads the relay's memory meanwhile), then sends a Ping on \
                every one and prints one JSON line: connections, admitted, held (answered the \
                Ping), handshakes per second over the whole run, and failures by kind.
                """
        )

        @Option(help: "The device's Valise home (passphrase in $VALISE_PASSPHRASE).") var home: String
        @Option(help: "Reach the relay at HOST:PORT instead of the directory's address.") var relay: String?
        @Option(help: "How many connections.") var count = 10_000
        @Option(help: "Handshakes in progress at once.") var concurrency = 64
        @Option(help: "Seconds to hold the connections idle once all are open.") var hold = 10.0
        @Option(help: "Seconds one connection may take to be admitted, or to answer the Ping.") var timeout = 30.0
        @Option(help: "Event-loop threads for the connections.") var threads = 1

        func validate() throws {
            guard count >= 1, concurrency >= 1, threads >= 1, hold >= 0, timeout > 0 else {
                throw ValidationError("--count, --concurrency and --threads must be positive, --hold and --timeout not negative")
            }
        }

        func run() async throws {
            let device = try LoadDevice(home: home, relay: relay)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            let target = LoadTarget(
                host: device.target.host, port: device.target.port, clientKey: device.identity.transportKey,
                relayKey: device.target.relay.noiseKey, timeout: .nanoseconds(Int64(timeout * 1e9)))

            let started = DispatchTime.now().uptimeNanoseconds
            let (connections, failures) = await Self.open(count: count, concurrency: concurrency, target: target, group: group)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            let rate = Double(connections.count) / max(seconds, 1e-9)
            Self.emit(#"{"event":"held","admitted":\#(connections.count),"handshakeSeconds":\#(seconds),"handshakesPerSecond":\#(rate)}"#)

            try? await Task.sleep(for: .seconds(hold))

            // Every connection, not a sample: one still open after the hold answers its Ping.
            var answered = 0
            var pingFailures: [String: Int] = [:]
            for start in stride(from: 0, to: connections.count, by: 1024) {
                let batch = connections[start..<min(start + 1024, connections.count)]
                for future in batch.map({ $0.ping(timeout: target.timeout) }) {
                    do {
                        try await future.get()
                        answered += 1
                    } catch {
                        pingFailures[LoadFailure.kind(of: error), default: 0] += 1
                    }
                }
            }
            for connection in connections { connection.close() }
            try? await group.shutdownGracefully()

            Self.emit("""
                {"event":"done","connections":\(count),"admitted":\(connections.count),"held":\(answered),\
                "handshakeSeconds":\(seconds),"handshakesPerSecond":\(rate),"concurrency":\(concurrency),\
                "holdSeconds":\(hold),"failures":\(Self.json(failures)),"pingFailures":\(Self.json(pingFailures))}
                """)
            if answered < count { throw ExitCode(3) }
        }

        /// Opens `count` connections, at most `concurrency` handshakes at a time.
        private static func open(
            count: Int, concurrency: Int, target: LoadTarget, group: any EventLoopGroup
        ) async -> ([LoadConnection], [String: Int]) {
            var connections: [LoadConnection] = []
            connections.reserveCapacity(count)
            var failures: [String: Int] = [:]
            await withTaskGroup(of: Result<LoadConnection, LoadFailure>.self) { tasks in
                var started = 0
                func startOne() {
                    started += 1
                    tasks.addTask { await LoadConnection.open(target, group: group) }
                }
                while started < min(concurrency, count) { startOne() }
                for await result in tasks {
                    switch result {
                    case .success(let connection): connections.append(connection)
                    case .failure(let failure): failures[failure.kind, default: 0] += 1
                    }
                    if started < count { startOne() }
                }
            }
            return (connections, failures)
        }

        private static func json(_ counts: [String: Int]) -> String {
            "{" + counts.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        }

        /// One line on standard output, flushed at once: the benchmark script waits for it.
        private static func emit(_ line: String) {
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }
}

/// Where and as whom every connection of a run connects.
struct LoadTarget: Sendable {
    let host: String
    let port: Int
    let clientKey: AgreementPrivateKey
    let relayKey: AgreementPublicKey
    let timeout: TimeAmount
}

/// Why a connection failed, by kind, for the summary.
struct LoadFailure: Error {
    let kind: String

    static func kind(of error: any Error) -> String {
        (error as? LoadFailure)?.kind ?? "io"
    }
}

/// One connection of the benchmark: a channel with a `LoadConnectionHandler`, leaner than
/// `RelayClient` (no answer table, no stream of unsolicited messages), so that ten thousand
/// of them fit in the load generator beside the relay.
final class LoadConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<LoadConnectionHandler>

    private init(channel: any Channel, handler: NIOLoopBound<LoadConnectionHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects, runs the handshake and says Hello; succeeds once Welcome came back.
    static func open(_ target: LoadTarget, group: any EventLoopGroup) async -> Result<LoadConnection, LoadFailure> {
        let added = NIOLockedValueBox<NIOLoopBound<LoadConnectionHandler>?>(nil)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(target.timeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = LoadConnectionHandler(
                            state: ClientConnectionState(
                                clientKey: target.clientKey, relayKey: target.relayKey,
                                maximumMessageLength: ValiseTransport.defaultMaximumMessageLength),
                            eventLoop: channel.eventLoop)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        added.withLockedValue { $0 = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
                    }
                }
                .connect(host: target.host, port: target.port)
                .get()
        } catch {
            return .failure(LoadFailure(kind: "connect"))
        }
        guard let handler = added.withLockedValue({ $0 }) else { return .failure(LoadFailure(kind: "connect")) }
        let connection = LoadConnection(channel: channel, handler: handler)
        do {
            let admitted = channel.eventLoop.flatSubmit { handler.value.admitted }
            try await admitted.withTimeout(target.timeout, on: channel.eventLoop).get()
            return .success(connection)
        } catch {
            connection.close()
            return .failure(LoadFailure(kind: LoadFailure.kind(of: error)))
        }
    }

    /// Succeeds when the relay answers a Ping on this connection.
    func ping(timeout: TimeAmount) -> EventLoopFuture<Void> {
        let handler = self.handler
        return channel.eventLoop.flatSubmit { handler.value.ping() }.withTimeout(timeout, on: channel.eventLoop)
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// The client side of one benchmark connection on its event loop: `ClientConnectionState`
/// for Noise and framing, Hello then Welcome, and later one Ping at a time.
final class LoadConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let helloID: UInt64 = 1
    private static let pingID: UInt64 = 2

    private var state: ClientConnectionState
    private var context: ChannelHandlerContext?
    private let admittedPromise: EventLoopPromise<Void>
    private var pongPromise: EventLoopPromise<Void>?
    private var wasAdmitted = false
    private var closedKind: String?

    init(state: ClientConnectionState, eventLoop: any EventLoop) {
        self.state = state
        self.admittedPromise = eventLoop.makePromise()
    }

    var admitted: EventLoopFuture<Void> { admittedPromise.futureResult }

    func ping() -> EventLoopFuture<Void> {
        guard let context, closedKind == nil, pongPromise == nil else {
            return admittedPromise.futureResult.eventLoop.makeFailedFuture(LoadFailure(kind: closedKind ?? "closed"))
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        pongPromise = promise
        var ping = WirePing()
        ping.data = Data([1, 2, 3, 4])
        send(.ping(ping), id: Self.pingID, context: context)
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
        finish("closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish("io")
        context.close(promise: nil)
    }

    private func send(_ body: WireClientMessage.OneOf_Body, id: UInt64, context: ChannelHandlerContext) {
        var message = WireClientMessage()
        message.requestID = id
        message.body = body
        perform(state.send(WireCodec.encode(message)), context: context)
    }

    private func perform(_ actions: [ClientConnectionState.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .write(let bytes):
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            case .established:
                var hello = WireHello()
                hello.protocolVersion = 1
                hello.software = "valise-load connections"
                send(.hello(hello), id: Self.helloID, context: context)
            case .deliver(let bytes):
                received(bytes, context: context)
            case .close:
                finish(wasAdmitted ? "closed" : "handshake")
                context.close(promise: nil)
            }
        }
    }

    private func received(_ bytes: [UInt8], context: ChannelHandlerContext) {
        guard let message = try? WireCodec.decodeRelayMessage(bytes) else {
            finish("protocol")
            context.close(promise: nil)
            return
        }
        switch (message.requestID, message.body) {
        case (Self.helloID, .welcome?):
            wasAdmitted = true
            admittedPromise.succeed()
        case (Self.pingID, .pong?):
            pongPromise?.succeed()
            pongPromise = nil
        case (_, .error(let error)?):
            // The relay says why before it closes (not admitted, rate limited, shutting down).
            finish("relay-\(error.code)")
            context.close(promise: nil)
        default:
            break
        }
    }

    private func finish(_ kind: String) {
        if closedKind == nil { closedKind = kind }
        let failure = LoadFailure(kind: closedKind!)
        // Completing a promise a second time does nothing, so an admitted one stays admitted.
        admittedPromise.fail(failure)
        pongPromise?.fail(failure)
        pongPromise = nil
    }
}

extension EventLoopFuture where Value: Sendable {
    /// Fails with a timeout if the future has not completed after `timeout`.
    func withTimeout(_ timeout: TimeAmount, on loop: any EventLoop) -> EventLoopFuture<Value> {
        let promise = loop.makePromise(of: Value.self)
        let timer = loop.scheduleTask(in: timeout) { promise.fail(LoadFailure(kind: "timeout")) }
        whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }
}
