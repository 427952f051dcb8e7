/// When an outgoing relay link tries again after a failure: exponential backoff with full
/// jitter (a random delay between 0 and the current bound), the bound doubling from
/// `initial` to `maximum`, and starting over once a link has stayed up for `stableAfter`
/// (docs/PROTOCOL.md, "Relay links"). Pure: the caller supplies the clock and the random
/// numbers, so tests see exact delays.
struct LinkBackoff: Sendable, Equatable {
    static let initialSeconds = 1.0
    static let maximumSeconds = 300.0
    static let stableAfterSeconds = 60.0

    let initial: Double
    let maximum: Double
    let stableAfter: Double
    /// The bound for the next delay.
    private(set) var bound: Double
    /// When the current connection came up, if it is up.
    private var upSince: Double?

    init(initial: Double = Self.initialSeconds, maximum: Double = Self.maximumSeconds, stableAfter: Double = Self.stableAfterSeconds) {
        self.initial = initial
        self.maximum = maximum
        self.stableAfter = stableAfter
        self.bound = initial
    }

    /// The link completed its handshake and greeting at `now`.
    mutating func connected(at now: Double) {
        upSince = now
    }

    /// The peer relay was just seen alive (it opened its own link to this relay and proved
    /// its key): the next delay starts from `initial` again, as after a stable connection.
    mutating func peerReachable() {
        bound = initial
    }

    /// The link failed or closed at `now`: how long to wait before the next attempt, from
    /// `random`, a number in [0, 1). A link that had stayed up long enough starts over.
    mutating func failed(at now: Double, random: Double) -> Double {
        if let upSince, now - upSince >= stableAfter { bound = initial }
        upSince = nil
        let delay = bound * min(max(random, 0), 1)
        bound = min(bound * 2, maximum)
        return delay
    }
}
