import CoreMetrics
public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle
import NIOConcurrencyHelpers
import ValiseCrypto
import ValiseDirectory
public import ValiseStore
#if canImport(Glibc)
import Glibc
#endif

/// The relay as a Service: binds, accepts connections (each into a pipeline of an idle
/// timer and a `RelayConnectionHandler`), and on graceful shutdown stops accepting, tells
/// connected clients it is shutting down, and returns once every connection has closed.
public final class RelayServer: Service {
    private let configuration: RelayConfiguration
    let keys: RelayKeys
    let directory: RelayDirectory
    let store: any EnvelopeStore & PrekeyStore
    /// Where attachment blobs are kept, apart from envelopes (nil: the relay takes none).
    let blobStore: (any BlobStore)?
    let writer: GroupCommitWriter
    let mailboxes = MailboxRegistry()
    private let handoff = LoopHandoff()
    let logger: Logger
    private let group: any EventLoopGroup
    private let onListening: @Sendable (SocketAddress) -> Void
    public let registry = ConnectionRegistry()
    /// This node's part when the store is shared by several nodes of the relay (PostgreSQL).
    let node: SharedNode?
    /// Set once `run` built it: what entries from relay links need to take effect.
    let sharedContext = NIOLockedValueBox<RelayConnectionHandler.Context?>(nil)
    public let limiter: ConnectionLimiter
    /// What the limits refused or held back since the start (`limits.json`, `valised status`).
    public let counters = LimitCounters(since: WallClock.seconds(), clock: { WallClock.seconds() })
    /// The relay's metrics (`collectMetrics` brings them up to date).
    public let metrics: RelayMetrics

    public init(
        configuration: RelayConfiguration, keys: RelayKeys, directory: RelayDirectory, store: any EnvelopeStore & PrekeyStore, logger: Logger,
        group: (any EventLoopGroup)? = nil, metrics: RelayMetrics = RelayMetrics(), blobs: (any BlobStore)? = nil,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.keys = keys
        self.directory = directory
        self.store = store
        self.blobStore = blobs
        self.metrics = metrics
        self.writer = GroupCommitWriter(store: store, prekeys: store, clock: { WallClock.seconds() }, batching: handoff, observer: metrics)
        self.logger = logger
        self.group = group ?? MultiThreadedEventLoopGroup.singleton
        self.onListening = onListening
        self.limiter = ConnectionLimiter(limits: configuration.limits)
        self.node = SharedNode(store: store, registry: registry, threadPool: NIOThreadPool.singleton, logger: logger)
    }

    /// A new connection's receive buffer: small, since an idle connection keeps it. The
    /// hybrid handshake's first message (8 + 2 + 1248 bytes with the preamble) then takes a
    /// few reads; measured (`scripts/bench connections`), starting at 2048 bytes instead
    /// cost 1 KiB more per idle connection and no handshakes per second.
    static let initialReceiveBufferBytes = 256

    /// Commit counters of the store's writer (for the benchmark and the statistics log).
    public var commitCounters: GroupCommitWriter.Counters { writer.currentCounters }

    public func run() async throws {
        writer.start()
        defer { writer.stop() }
        let publisher = DirectoryPublisher(
            directory: directory, counters: counters, clock: { WallClock.seconds() }, share: node.flatMap { Self.sharing(node: $0, logger: self.logger) })
        let (writer, logger) = (self.writer, self.logger)
        // A crash between a revocation's publish and its purge leaves a queue behind: purge
        // every mailbox whose member is no longer active before serving.
        let members = directory.snapshot.state.members
        var activeMailboxes: [Mailbox] = []
        for mailbox in try store.occupiedMailboxes() {
            let name = try? MemberName(mailbox.name)
            if name.flatMap({ members[$0]?.isActive }) != true {
                Self.purge(mailbox, writer: writer, logger: logger)
            } else {
                activeMailboxes.append(mailbox)
            }
        }
        await Self.deleteStalePrekeysAtStart(activeMailboxes, directory: directory, writer: writer, logger: logger)
        // Links to the other relays of the organisation, when the directory names this one.
        let federation = Federation(
            dependencies: .init(
                keys: keys, directory: directory, store: store, writer: writer, handoff: handoff, publisher: publisher,
                threadPool: NIOThreadPool.singleton, node: node,
                counters: counters, limits: configuration.limits, clock: { WallClock.seconds() },
                onPublished: { [sharedContext] published in sharedContext.withLockedValue { $0 }?.applyPublished(published) }),
            group: group, logger: logger)
        let blobs = blobStore.map { blobStore in
            RelayBlobs(
                store: blobStore, queue: configuration.queue, freeSpace: Self.freeSpace(for: configuration),
                clock: { WallClock.seconds() }, logger: logger,
                onForwardsWaiting: { [linksEnabled = configuration.linksEnabled] destinations in
                    if linksEnabled { federation.blobsWaiting(for: destinations) }
                })
        }
        let shared = RelayConnectionHandler.Context(
            keys: keys, directory: directory, registry: registry, limiter: limiter, limits: configuration.limits,
            queue: configuration.queue, threadPool: NIOThreadPool.singleton, store: store, prekeys: store,
            prekeyDispenser: PrekeyDispenser(store: store, limits: configuration.limits, counters: counters),
            sends: DeviceRateLimiter(perSecond: configuration.limits.sendsPerSecondPerDevice, burst: Double(configuration.limits.sendBurstPerDevice)),
            publishes: DeviceRateLimiter(
                perSecond: configuration.limits.directoryPublishesPerMinute / 60, burst: Double(configuration.limits.directoryPublishBurst)),
            publisher: publisher,
            counters: counters, storage: StorageWatch(logger: logger), writer: writer,
            mailboxes: mailboxes, handoff: handoff, clock: { WallClock.seconds() },
            onMembersRemoved: { members in
                for member in members { Self.purge(Mailbox(member.value), writer: writer, logger: logger) }
            },
            onMembersRotated: { [directory] members in
                Self.deleteRotatedPrekeys(members.map { Mailbox($0.value) }, directory: directory, writer: writer, logger: logger)
            },
            federation: configuration.linksEnabled ? federation : nil, metrics: metrics, node: node, blobs: blobs)
        sharedContext.withLockedValue { $0 = shared }
        if configuration.linksEnabled {
            federation.start()
        } else {
            logger.notice("relay links are off (links: off): this relay neither opens nor accepts links with other relays")
        }
        let limits = configuration.limits
        let counter = NIOLockedValueBox(0)
        let counters = self.counters
        let accepted = metrics.connectionsAccepted
        let refusals = RefusalReport()
        let lingering = BusyResponder.Lingering()

        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: Int32(min(limits.maximumConnections, 4096)))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Each connection keeps its receive buffer between reads, at the largest size
            // it has needed. It starts small and grows (doubling) for the hybrid handshake's
            // first message and for a connection that carries traffic, and shrinks again
            // after small reads.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(
                minimum: 64, initial: Self.initialReceiveBufferBytes, maximum: 65_536))
            .childChannelInitializer { channel in
                let peer = channel.remoteAddress?.ipAddress ?? "unknown"
                var connectionLogger = logger
                connectionLogger[metadataKey: "connection.id"] = "\(counter.withLockedValue { $0 += 1; return $0 })"
                connectionLogger[metadataKey: "peer"] = "\(peer)"
                if let refusal = shared.limiter.acquire(peer) {
                    // Each refusal at debug level; a warning at most every ten seconds, so a
                    // flood cannot flood the log as well.
                    connectionLogger.debug("refused a connection", metadata: ["reason": "\(refusal)"])
                    counters.count(refusal.limit)
                    if let summary = refusals.record(refusal, now: .now()) {
                        logger.warning("refusing connections", metadata: summary.metadata)
                    }
                    // The client hears BUSY, not silence (which it could not tell from an impostor).
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(BusyResponder(lingering: lingering))
                    }
                }
                accepted.increment()
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        IdleStateHandler(readTimeout: .seconds(limits.idleTimeout)))
                    try channel.pipeline.syncOperations.addHandler(
                        RelayConnectionHandler(shared: shared, peer: peer, logger: connectionLogger))
                }
            }
            .bind(host: configuration.listenHost, port: configuration.listenPort)
            .get()

        let loop = server.eventLoop
        let sweep = loop.scheduleRepeatedTask(initialDelay: .seconds(Int64(1)), delay: .seconds(configuration.queue.expirySweepInterval)) { _ in
            writer.expire { result in
                switch result {
                case .success(let count) where count > 0:
                    logger.info("expired undelivered envelopes", metadata: ["envelopes": "\(count)"])
                case .success: break
                case .failure(let error):
                    logger.error("could not expire envelopes", metadata: ["error": "\(error.message)"])
                }
            }
            if let blobs { NIOThreadPool.singleton.submit { _ in blobs.expire() } }
        }
        let statistics = loop.scheduleRepeatedTask(
            initialDelay: .seconds(configuration.queue.statisticsInterval), delay: .seconds(configuration.queue.statisticsInterval)
        ) { [store, registry] _ in
            NIOThreadPool.singleton.submit { _ in
                Self.logStatistics(store: store, writer: writer, logger: logger)
                Self.logConnections(registry, logger: logger)
            }
        }
        // The limits' counts for `valised status`: once a second while they change.
        // A failure is logged once, not every second (a full disk must not fill the log too).
        let statusDirectory = configuration.directory
        let lastWritten = NIOLockedValueBox<(figures: LimitCounters.Figures?, failing: Bool)>((nil, false))
        let lastLinks = NIOLockedValueBox<[LinkStatusFile.Link]?>(nil)
        let writeStatus: @Sendable () -> Void = {
            let links = federation.status
            if lastLinks.withLockedValue({ $0 != links }) {
                // Best effort, like the limits' file: `valised status` says when it is stale.
                if (try? LinkStatusFile(updated: WallClock.seconds(), links: links).write(toDirectory: statusDirectory)) != nil {
                    lastLinks.withLockedValue { $0 = links }
                }
            }
            // Written again when a count grows, and when a minute's counts leave the recent window.
            let now = WallClock.seconds()
            let figures = counters.figures(now: now)
            guard lastWritten.withLockedValue({ $0.figures != figures }) else { return }
            do {
                try counters.write(toDirectory: statusDirectory, updated: now)
                lastWritten.withLockedValue { $0 = (figures, false) }
            } catch {
                let first = lastWritten.withLockedValue { state in
                    defer { state.failing = true }
                    return !state.failing
                }
                if first { logger.warning("could not write the limits' status file", metadata: ["error": "\(error)"]) }
            }
        }
        let status = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(Int64(1))) { _ in
            NIOThreadPool.singleton.submit { _ in writeStatus() }
        }
        let sharing = node.map { startSharing($0, loop: loop, federation: federation, publisher: publisher) }
        defer {
            sharing?.stop()
            sweep.cancel()
            statistics.cancel()
            status.cancel()
            writeStatus()
        }

        // The operator's way in (`valised status`, `valised queue`), once the relay serves.
        // Without it the relay still serves its clients; the operator hears why.
        let targets = ControlTargets(store: store, registry: registry, mailboxes: mailboxes, federation: federation, since: counters.since, logger: logger)
        let control: ControlServer?
        do {
            control = try ControlServer(path: ControlProtocol.socketPath(directory: configuration.directory)) { Self.control($0, targets: targets) }
        } catch {
            logger.error("no control socket: valised status and valised queue cannot reach this relay", metadata: ["error": "\(error)"])
            control = nil
        }
        defer { control?.stop() }

        if let address = server.localAddress {
            logger.info("listening", metadata: ["address": "\(address)", "relay.noise-key": "\(keys.noiseFingerprint)"])
            onListening(address)
        }

        // Cancellation too: when another service of the group (the metrics endpoint) fails,
        // the group cancels this one, which must then stop as it does at SIGTERM.
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await server.closeFuture.get()
        } onCancelOrGracefulShutdown: { [registry] in
            logger.info("shutting down: no new connections; closing the open ones")
            server.close(promise: nil)
            registry.dropAll(reason: RelayError(.shuttingDown, code: "shutting-down", message: "the relay is shutting down"))
        }
        // Give connections that were dropped a moment to flush and close. NIO's timer, not
        // Task.sleep: under libfaketime (the expiry tests) a sleeping task's timer was seen
        // never to fire, and a relay with connections open at SIGTERM never stopped.
        for _ in 0..<50 where limiter.openConnections > 0 {
            try? await loop.scheduleTask(in: .milliseconds(20)) {}.futureResult.get()
        }
        await federation.stop()
        await publisher.shutdown()
        Self.logStatistics(store: store, writer: writer, logger: logger)
        logger.info("stopped")
    }

    /// Connections admitted by role since the last line, and open now: a normal day in the
    /// log at info level, with no key, address or name (docs/SECURITY.md).
    static func logConnections(_ registry: ConnectionRegistry, logger: Logger) {
        let admitted = registry.takeAdmitted()
        let open = registry.openByRole
        var metadata: Logger.Metadata = [:]
        for role in ConnectionRole.allCases {
            metadata["connections.admitted.\(role.rawValue)"] = "\(admitted[role] ?? 0)"
            metadata["connections.open.\(role.rawValue)"] = "\(open[role] ?? 0)"
        }
        logger.info("connection statistics", metadata: metadata)
    }

    /// The queue's figures in one log line (also `valised status`).
    static func logStatistics(store: any EnvelopeStore, writer: GroupCommitWriter, logger: Logger) {
        guard let statistics = try? store.statistics(now: WallClock.seconds()) else { return }
        let counters = writer.currentCounters
        var metadata: Logger.Metadata = [
            "queue.envelopes": "\(statistics.count)", "queue.bytes": "\(statistics.bytes)",
            "queue.oldest-age-seconds": "\(statistics.oldestAge)", "queue.mailboxes": "\(statistics.mailboxes)",
            "commits.accept": "\(counters.acceptCommits)", "commits.accepted-envelopes": "\(counters.acceptedEnvelopes)",
            "commits.acknowledge": "\(counters.acknowledgeCommits)",
        ]
        for precedence in Precedence.allCases {
            metadata["queue.\(precedence.name.lowercased())"] = "\(statistics.countByPrecedence[precedence] ?? 0)"
        }
        logger.info("queue statistics", metadata: metadata)
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

extension RelayServer {
    static func purge(_ mailbox: Mailbox, writer: GroupCommitWriter, logger: Logger) {
        writer.purge(mailbox: mailbox) { result in
            switch result {
            case .success(let count):
                logger.info("purged a revoked member's queue", metadata: ["member": "\(mailbox.name)", "envelopes": "\(count)"])
            case .failure(let error):
                logger.error("could not purge a revoked member's queue", metadata: ["member": "\(mailbox.name)", "error": "\(error.message)"])
            }
        }
    }
}

/// Counts refused connections between warnings.
final class RefusalReport: Sendable {
    struct Summary {
        let counts: [ConnectionLimiter.Refusal: Int]
        var metadata: Logger.Metadata {
            var metadata: Logger.Metadata = [:]
            for (refusal, count) in counts { metadata["refused.\(refusal)"] = "\(count)" }
            return metadata
        }
    }

    private let interval: TimeAmount
    private let state = NIOLockedValueBox((last: NIODeadline?.none, counts: [ConnectionLimiter.Refusal: Int]()))

    init(interval: TimeAmount = .seconds(Int64(10))) {
        self.interval = interval
    }

    /// Counts `refusal`; returns the counts since the last warning when one is due.
    func record(_ refusal: ConnectionLimiter.Refusal, now: NIODeadline) -> Summary? {
        state.withLockedValue { state in
            state.counts[refusal, default: 0] += 1
            if let last = state.last, now - last < interval { return nil }
            state.last = now
            defer { state.counts = [:] }
            return Summary(counts: state.counts)
        }
    }
}
