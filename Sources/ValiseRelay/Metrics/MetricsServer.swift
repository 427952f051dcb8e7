public import Logging
public import NIOCore
import NIOConcurrencyHelpers
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// The Prometheus endpoint (`metrics.listen`) as a Service beside the relay: HTTP/1 with
/// SwiftNIO, `GET /metrics` only, one request per connection, each bounded in size and in
/// idle time, and only a few connections at once. `render` produces the exposition; it runs
/// on the thread pool, never on an event loop, since it may read the store.
public final class MetricsServer: Service {
    /// Seconds a connection may stay without reading or writing before it is closed.
    static let idleTimeout = TimeAmount.seconds(Int64(10))
    /// Connections open at once; more are closed at once (a scraper needs one).
    static let maximumConnections = 16

    private let listen: MetricsListen
    private let render: @Sendable () -> [UInt8]
    private let logger: Logger
    private let group: any EventLoopGroup
    private let onListening: @Sendable (SocketAddress) -> Void
    /// The listening channel, once bound.
    private let bound = NIOLockedValueBox<(any Channel)?>(nil)

    public init(
        listen: MetricsListen, logger: Logger, group: (any EventLoopGroup)? = nil, render: @escaping @Sendable () -> [UInt8],
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.listen = listen
        self.render = render
        self.logger = logger
        self.group = group ?? MultiThreadedEventLoopGroup.singleton
        self.onListening = onListening
    }

    /// Binds the endpoint (announcing it) before the service group runs, so that a port
    /// already taken stops the start with one line instead of a relay left half-started.
    /// `run` binds if this was not called.
    public func bind() async throws(RelayError) {
        guard bound.withLockedValue({ $0 }) == nil else { return }
        let server: any Channel
        do {
            server = try await bind(render: render, open: NIOLockedValueBox(0))
        } catch {
            // In words, not NIO's "bind(descriptor:ptr:bytes:) … (errno: 98)".
            let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
            throw RelayError(.internal, code: "metrics-listen", message: "cannot serve metrics on \(listen): \(reason)")
        }
        bound.withLockedValue { $0 = server }
        if let address = server.localAddress {
            logger.info("metrics endpoint listening", metadata: ["address": "\(address)"])
            onListening(address)
        }
    }

    public func run() async throws {
        try await bind()
        guard let server = bound.withLockedValue({ $0 }) else { return }
        // Closed on graceful shutdown, and when the group is cancelled (the relay stopped):
        // waiting for the close future does not end with the task.
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await server.closeFuture.get()
            } onGracefulShutdown: {
                server.close(promise: nil)
            }
        } onCancel: {
            server.close(promise: nil)
        }
    }

    private func bind(render: @escaping @Sendable () -> [UInt8], open: NIOLockedValueBox<Int>) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard open.withLockedValue({ count in
                    guard count < Self.maximumConnections else { return false }
                    count += 1
                    return true
                }) else {
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in open.withLockedValue { $0 -= 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    try Self.configure(channel.pipeline.syncOperations) { loop in
                        NIOThreadPool.singleton.runIfActive(eventLoop: loop) { render() }
                    }
                }
            }
            .bind(host: listen.host, port: listen.port)
            .get()
    }

    /// The pipeline of one connection (tests build it on an EmbeddedChannel): the size
    /// bound before any parsing, the idle timer, NIO's HTTP/1 server codec, the handler.
    static func configure(
        _ pipeline: ChannelPipeline.SynchronousOperations, maximumRequestBytes: Int = MetricsRequestLimit.defaultMaximumBytes,
        render: @escaping MetricsHTTPHandler.Render
    ) throws {
        try pipeline.addHandler(MetricsRequestLimit(maximumBytes: maximumRequestBytes))
        try pipeline.addHandler(IdleStateHandler(allTimeout: idleTimeout))
        try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
        try pipeline.addHandler(MetricsHTTPHandler(render: render))
    }
}
