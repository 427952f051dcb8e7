public import ValiseStore

/// Everything a running relay is told (config/valised.yaml documents each setting; the
/// executable reads them with swift-configuration from flags, the environment and a file).
public struct RelayConfiguration: Sendable, Equatable {
    /// Resource limits, all with safe defaults.
    public struct Limits: Sendable, Equatable {
        /// Connections open at once, in all.
        public var maximumConnections = 10_000
        /// Connections open at once from one source address.
        public var maximumConnectionsPerAddress = 64
        /// New connections (handshakes) per second from one source address, and the burst.
        public var handshakesPerSecondPerAddress = 20.0
        public var handshakeBurstPerAddress = 40
        /// Seconds a client has to complete the handshake and be admitted.
        public var handshakeTimeout = 10.0
        /// Seconds without any byte from the client before the connection is closed.
        public var idleTimeout = 600.0
        /// Seconds a started frame may stay incomplete (a client dribbling bytes).
        public var frameTimeout = 20.0
        /// The largest application message, after reassembly.
        public var maximumMessageBytes = 1 << 20
        /// Directory entries sent in one answer, at most.
        public var maximumEntriesPerFetch = 1000
        /// The largest sealed envelope accepted, in bytes.
        public var maximumEnvelopeBytes = 256 * 1024
        /// Envelopes delivered to one connection and not yet acknowledged, at most.
        public var deliveryWindow = 64
        /// Requests of one connection still waiting for their answer (sends, status
        /// queries, directory publishes, prekey requests that read the store), at most: past
        /// it the relay stops reading from the connection until one is answered, so a client
        /// cannot queue work (and memory) faster than the relay does it.
        public var maximumPendingRequests = 64
        /// Bytes of one connection's Sends (envelopes) and DirectoryPublishes (entries)
        /// waiting for their answers, at most: past it the relay stops reading from the
        /// connection too (64 requests of the largest envelope would otherwise be 16 MiB per
        /// connection).
        public var maximumPendingBytes = 4 << 20
        /// Sends one device may make per second, across its connections, and in a burst
        /// (a token bucket): past it, RATE_LIMITED, so that one device cannot take the
        /// relay's disk from everyone else. The burst covers a message to a large group.
        public var sendsPerSecondPerDevice = 50.0
        public var sendBurstPerDevice = 500
        /// One-time prekeys one device may take per minute, across all members, and in a
        /// burst (a device also gets at most one of each member's an hour): past it, bundles
        /// come without one, so nobody can drain other members' one-time prekeys. The burst
        /// covers a circular to 500 new correspondents.
        public var oneTimePrekeysPerMinute = 60.0
        public var oneTimePrekeyBurst = 500
        /// Members whose bundles one device may fetch per minute, and in a burst (a fetch of
        /// several members counts each): past it, RATE_LIMITED, so that one device cannot
        /// keep the store busy. Generous: a circular to 500 fits in the burst.
        public var prekeyMembersPerMinute = 600.0
        public var prekeyMemberBurst = 1000
        /// Directory publishes one key may make per minute, across its connections, and in a
        /// burst (a token bucket): past it, RATE_LIMITED. Only admin keys publish, and an
        /// admin publishes after each change; the bound keeps one key from making the relay
        /// decode and check publishes without end.
        public var directoryPublishesPerMinute = 10.0
        public var directoryPublishBurst = 20

        public init() {}
    }

    /// The message queue.
    public struct Queue: Sendable, Equatable {
        /// Per-mailbox quotas and how long accepted ids are remembered.
        public var limits = QueueLimits()
        /// The TTL class for a send that asks for none, and the longest the relay keeps any.
        public var defaultTTL = TTLClass.week
        public var maximumTTL = TTLClass.month
        /// Seconds between sweeps that drop expired envelopes.
        public var expirySweepInterval = 60.0
        /// Seconds between queue statistics in the log.
        public var statisticsInterval = 300.0
        /// A cap on the store's size, in bytes (nil: the disk is the limit): the SQLite
        /// file's, or the envelopes' bytes in PostgreSQL (which stops hard on a full disk).
        public var maximumStoreBytes: Int?
        /// Bytes kept allocated beside the store and given back when the disk fills, so
        /// that acknowledgements and expiry can still free room (0: none).
        public var reserveBytes = SQLiteEnvelopeStore.defaultReserveBytes
        /// When an envelope counts as stored: on the disk (`.full`), or with the operating
        /// system only (`.os`: survives a relay crash, not a power cut).
        public var durability = Durability.full
        /// The largest attachment blob taken, in bytes (Welcome.max_blob_bytes): a larger
        /// upload is refused TOO_LARGE before any byte.
        public var maximumBlobBytes = 104_857_600
        /// Bytes of all blobs held (their declared sizes), at most: past it, BLOB_QUOTA.
        /// Blobs are kept apart from envelopes and never count against them.
        public var maximumBlobStoreBytes = 8 << 30
        /// Bytes of the blobs one device uploaded that are still held, at most: past it,
        /// BLOB_QUOTA. Counted in memory only (a restart forgets it): the relay's disk never
        /// ties a blob to its uploader.
        public var maximumBlobBytesPerDevice = 1 << 30

        public init() {}
    }

    /// Where to listen: `HOST:PORT`; port 0 picks a free port (printed on start).
    public var listenHost = "127.0.0.1"
    public var listenPort = 7400
    /// The relay's directory: keys, the organisation bundle, later the message store.
    public var directory: String
    public var limits = Limits()
    public var queue = Queue()
    /// Where the queue is kept: SQLite in `directory` (the default) or PostgreSQL.
    public var store = Store()
    /// Whether the relay links with the other relays its directory lists (`links: on`, the
    /// default). Off, it opens no link and refuses every link offered: a relay kept apart.
    public var linksEnabled = true
    /// Where the Prometheus metrics endpoint listens (`metrics.listen`); nil: no endpoint.
    public var metricsListen: MetricsListen?

    /// The envelope store inside the relay's directory.
    public var storePath: String { directory + "/queue.sqlite" }

    /// The blob store beside it (SQLite only; on PostgreSQL blobs have tables of their own).
    public var blobStorePath: String { directory + "/blobs.sqlite" }

    public init(directory: String) {
        self.directory = directory
    }
}
