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

        public init() {}
    }

    /// Where to listen: `HOST:PORT`; port 0 picks a free port (printed on start).
    public var listenHost = "127.0.0.1"
    public var listenPort = 7400
    /// The relay's directory: keys, the organisation bundle, later the message store.
    public var directory: String
    public var limits = Limits()

    public init(directory: String) {
        self.directory = directory
    }
}
