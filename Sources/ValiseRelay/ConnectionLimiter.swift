import NIOConcurrencyHelpers
public import NIOCore
import ValiseCrypto

/// Counts connections in all and per source address, and meters new connections per
/// address with a token bucket, so one address cannot take the relay's capacity or
/// handshake CPU. Thread-safe; `acquire` and `release` come in pairs.
public final class ConnectionLimiter: Sendable {
    public enum Refusal: Equatable, Sendable {
        case tooManyConnections
        case tooManyFromAddress
        case handshakeRate
        /// The system could give no more guarded memory for keys (out of memory, or of
        /// memory mappings): new connections wait, the open ones go on.
        case secureMemory

        /// The counter `valised status` shows it under.
        var limit: LimitCounters.Limit {
            switch self {
            case .tooManyConnections: .connections
            case .tooManyFromAddress: .connectionsPerAddress
            case .handshakeRate: .handshakeRate
            case .secureMemory: .secureMemory
            }
        }
    }

    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
        var open = 0
    }

    private struct State {
        var total = 0
        var addresses: [String: Bucket] = [:]
        /// When the table grows past this, idle addresses whose buckets have refilled are
        /// forgotten, so addresses that connected once do not pile up for ever.
        var sweepAbove = 1024
    }

    private let limits: RelayConfiguration.Limits
    private let state = NIOLockedValueBox(State())
    private let now: @Sendable () -> NIODeadline
    private let secureMemoryAvailable: @Sendable () -> Bool

    /// - `secureMemoryAvailable`: whether guarded memory has room for another connection's
    ///   keys; by default the shared arena's headroom, grown if need be.
    public init(
        limits: RelayConfiguration.Limits, now: @escaping @Sendable () -> NIODeadline = { .now() },
        secureMemoryAvailable: (@Sendable () -> Bool)? = nil
    ) {
        self.limits = limits
        self.now = now
        self.secureMemoryAvailable = secureMemoryAvailable ?? { SecureMemory.reserveHeadroom() }
    }

    /// Admits a new connection from `address`, or says why not.
    public func acquire(_ address: String) -> Refusal? {
        // Checked first, outside the lock: a connection whose handshake could not get
        // guarded memory is refused here rather than stopping the relay halfway through.
        guard secureMemoryAvailable() else { return .secureMemory }
        let time = now()
        return state.withLockedValue { state in
            guard state.total < limits.maximumConnections else { return .tooManyConnections }
            if state.addresses.count > state.sweepAbove { sweep(&state, at: time) }
            var bucket = state.addresses[address] ?? Bucket(tokens: burst, updated: time)
            refill(&bucket, at: time)
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
        let time = now()
        state.withLockedValue { state in
            guard var bucket = state.addresses[address], bucket.open > 0 else { return }
            bucket.open -= 1
            state.total -= 1
            refill(&bucket, at: time)
            // Forget an address with nothing open once its bucket is full again.
            state.addresses[address] = bucket.open == 0 && bucket.tokens >= burst ? nil : bucket
        }
    }

    public var openConnections: Int { state.withLockedValue { $0.total } }

    /// Addresses the limiter remembers (open connections, or a bucket still refilling).
    public var trackedAddresses: Int { state.withLockedValue { $0.addresses.count } }

    private var burst: Double { Double(limits.handshakeBurstPerAddress) }

    private func refill(_ bucket: inout Bucket, at time: NIODeadline) {
        let elapsed = Double((time - bucket.updated).nanoseconds) / 1e9
        bucket.tokens = min(burst, bucket.tokens + max(0, elapsed) * limits.handshakesPerSecondPerAddress)
        bucket.updated = time
    }

    private func sweep(_ state: inout State, at time: NIODeadline) {
        state.addresses = state.addresses.filter { _, bucket in
            var bucket = bucket
            refill(&bucket, at: time)
            return bucket.open > 0 || bucket.tokens < burst
        }
        state.sweepAbove = max(1024, 2 * state.addresses.count)
    }
}
