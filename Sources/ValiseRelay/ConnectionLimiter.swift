import NIOConcurrencyHelpers
public import NIOCore

/// Counts connections in all and per source address, and meters new connections per
/// address with a token bucket, so one address cannot take the relay's capacity or
/// handshake CPU. Thread-safe; `acquire` and `release` come in pairs.
public final class ConnectionLimiter: Sendable {
    public enum Refusal: Equatable, Sendable {
        case tooManyConnections
        case tooManyFromAddress
        case handshakeRate
    }

    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
        var open = 0
    }

    private struct State {
        var total = 0
        var addresses: [String: Bucket] = [:]
    }

    private let limits: RelayConfiguration.Limits
    private let state = NIOLockedValueBox(State())
    private let now: @Sendable () -> NIODeadline

    public init(limits: RelayConfiguration.Limits, now: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.limits = limits
        self.now = now
    }

    /// Admits a new connection from `address`, or says why not.
    public func acquire(_ address: String) -> Refusal? {
        let time = now()
        return state.withLockedValue { state in
            guard state.total < limits.maximumConnections else { return .tooManyConnections }
            var bucket = state.addresses[address] ?? Bucket(tokens: Double(limits.handshakeBurstPerAddress), updated: time)
            let elapsed = Double((time - bucket.updated).nanoseconds) / 1e9
            bucket.tokens = min(Double(limits.handshakeBurstPerAddress), bucket.tokens + max(0, elapsed) * limits.handshakesPerSecondPerAddress)
            bucket.updated = time
            guard bucket.open < limits.maximumConnectionsPerAddress else {
                state.addresses[address] = bucket
                return .tooManyFromAddress
            }
            guard bucket.tokens >= 1 else {
                state.addresses[address] = bucket
                return .handshakeRate
            }
            bucket.tokens -= 1
            bucket.open += 1
            state.total += 1
            state.addresses[address] = bucket
            return nil
        }
    }

    public func release(_ address: String) {
        state.withLockedValue { state in
            guard var bucket = state.addresses[address], bucket.open > 0 else { return }
            bucket.open -= 1
            state.total -= 1
            // Forget an address with nothing open once its bucket has refilled.
            if bucket.open == 0 && bucket.tokens >= Double(limits.handshakeBurstPerAddress) - 1 {
                state.addresses[address] = nil
            } else {
                state.addresses[address] = bucket
            }
        }
    }

    public var openConnections: Int { state.withLockedValue { $0.total } }
}
