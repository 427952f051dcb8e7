public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle
import NIOConcurrencyHelpers
import ValiseCrypto
#if canImport(Glibc)
import Glibc
#endif

/// The relay as a Service: binds, accepts connections (each into a pipeline of an idle
/// timer and a `RelayConnectionHandler`), and on graceful shutdown stops accepting, tells
/// connected clients it is shutting down, and returns once every connection has closed.
public final class RelayServer: Service {
    private let configuration: RelayConfiguration
    private let keys: RelayKeys
    private let directory: RelayDirectory
    private let logger: Logger
    private let group: any EventLoopGroup
    private let onListening: @Sendable (SocketAddress) -> Void
    public let registry = ConnectionRegistry()
    public let limiter: ConnectionLimiter

    public init(
        configuration: RelayConfiguration, keys: RelayKeys, directory: RelayDirectory, logger: Logger,
        group: (any EventLoopGroup)? = nil,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.keys = keys
        self.directory = directory
        self.logger = logger
        self.group = group ?? MultiThreadedEventLoopGroup.singleton
        self.onListening = onListening
        self.limiter = ConnectionLimiter(limits: configuration.limits)
    }

    public func run() async throws {
        let shared = RelayConnectionHandler.Context(
            keys: keys, directory: directory, registry: registry, limiter: limiter, limits: configuration.limits,
            threadPool: NIOThreadPool.singleton, clock: { WallClock.seconds() })
        let limits = configuration.limits
        let logger = self.logger
        let counter = NIOLockedValueBox(0)

        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                let peer = channel.remoteAddress?.ipAddress ?? "unknown"
                var connectionLogger = logger
                connectionLogger[metadataKey: "connection.id"] = "\(counter.withLockedValue { $0 += 1; return $0 })"
                connectionLogger[metadataKey: "peer"] = "\(peer)"
                if let refusal = shared.limiter.acquire(peer) {
                    connectionLogger.warning("refused a connection", metadata: ["reason": "\(refusal)"])
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        IdleStateHandler(readTimeout: .seconds(limits.idleTimeout)))
                    try channel.pipeline.syncOperations.addHandler(
                        RelayConnectionHandler(shared: shared, peer: peer, logger: connectionLogger))
                }
            }
            .bind(host: configuration.listenHost, port: configuration.listenPort)
            .get()

        if let address = server.localAddress {
            logger.info("listening", metadata: ["address": "\(address)", "relay.noise-key": "\(keys.noiseFingerprint)"])
            onListening(address)
        }

        try await withGracefulShutdownHandler {
            try await server.closeFuture.get()
        } onGracefulShutdown: { [registry] in
            logger.info("shutting down: no new connections; closing the open ones")
            server.close(promise: nil)
            registry.dropAll(reason: RelayError(.shuttingDown, code: "shutting-down", message: "the relay is shutting down"))
        }
        // Give connections that were dropped a moment to flush and close.
        for _ in 0..<50 where limiter.openConnections > 0 {
            try? await Task.sleep(for: .milliseconds(20))
        }
        logger.info("stopped")
    }
}

/// Seconds since 1970 on the wall clock (for entry and checkpoint times; NIO's deadlines
/// are monotonic).
enum WallClock {
    static func seconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(max(0, spec.tv_sec))
    }
}
