/// The client's side of the relay's per-device send limit (Welcome's `sends_per_second`
/// and `send_burst`): a token bucket at the relay's rate that holds at most half the
/// relay's burst and starts with that half, so that a circular of hundreds goes out as
/// fast as the relay takes it without meeting RATE_LIMITED, and the other half of the
/// relay's burst stays for the device's other connections (an agent, a `watch`) and for
/// timing differences between the two clocks. Pure: times in nanoseconds from the caller.
public struct SendPacer: Sendable, Equatable {
    public let perSecond: Double
    /// The most tokens in hand: half the relay's burst, at least one.
    public let capacity: Double
    private var tokens: Double
    private var updated: UInt64

    /// The most a relay's figures are believed: a rate or burst beyond these is as good as
    /// none (and keeps the arithmetic finite).
    static let maximumPerSecond = 1_000_000.0
    static let maximumBurst: UInt32 = 1_000_000

    /// Nil when the relay said nothing (0: an older relay) or something unusable: then the
    /// client sends as fast as the relay answers, as before.
    public init?(perSecond: Double, burst: UInt32, now: UInt64) {
        guard perSecond.isFinite, perSecond > 0, perSecond <= Self.maximumPerSecond, burst > 0, burst <= Self.maximumBurst else { return nil }
        self.perSecond = perSecond
        capacity = max(1, (Double(burst) / 2).rounded(.down))
        tokens = capacity
        updated = now
    }

    private mutating func refill(now: UInt64) {
        guard now > updated else { return }
        tokens = min(capacity, tokens + Double(now - updated) / 1e9 * perSecond)
        updated = now
    }

    /// How long to wait before the next send, in nanoseconds (0: send now).
    public mutating func delay(now: UInt64) -> UInt64 {
        refill(now: now)
        guard tokens < 1 else { return 0 }
        return UInt64(((1 - tokens) / perSecond * 1e9).rounded(.up))
    }

    /// A send went out.
    public mutating func take(now: UInt64) {
        refill(now: now)
        tokens -= 1
    }

    /// The relay said RATE_LIMITED all the same (another connection of this device sent
    /// too): nothing is in hand, so the next send waits a whole interval.
    public mutating func drain(now: UInt64) {
        refill(now: now)
        tokens = min(tokens, 0)
    }
}
