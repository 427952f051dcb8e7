public import Logging
public import NIOCore
import NIOConcurrencyHelpers
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle

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

    public func run() async throws {
        let render = self.render
        let open = NIOLockedValueBox(0)
        let server = try await ServerBootstrap(group: group)
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
        if let address = server.localAddress {
            logger.info("metrics endpoint listening", metadata: ["address": "\(address)"])
            onListening(address)
        }
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
