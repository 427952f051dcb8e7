import NIOConcurrencyHelpers
import NIOCore
import ValiseCrypto

/// A token bucket per device key, counted across all of the device's connections: sends
/// (one device must not take the relay's disk from everyone else), members whose prekey
/// bundles it fetches (each one a read of the store), and one-time prekeys it takes (which
/// one device must not drain); and per admin key, directory publishes (one key must not
/// keep the relay checking them). Keys are admitted keys only, so the table is bounded by
/// the directory.
final class DeviceRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    private let perSecond: Double
    private let burst: Double
    private let clock: @Sendable () -> UInt64
    private let buckets = NIOLockedValueBox<[AgreementPublicKey: Bucket]>([:])

    /// `perSecond` tokens a second, at most `burst` in hand (a new device starts full);
    /// `clock` in nanoseconds (monotonic); tests pass their own.
    init(perSecond: Double, burst: Double, clock: @escaping @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }) {
        self.perSecond = perSecond
        self.burst = max(1, burst)
        self.clock = clock
    }

    /// `perMinute` a minute, and `burst` at once.
    static func perMinute(_ perMinute: Double, burst: Int) -> DeviceRateLimiter {
        DeviceRateLimiter(perSecond: perMinute / 60, burst: Double(burst))
    }

    /// Takes `cost` tokens for `key`, all or none; false when it has fewer.
    func allow(_ key: AgreementPublicKey, cost: Int = 1) -> Bool {
        let now = clock()
        return buckets.withLockedValue { table in
            var bucket = table[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double(now &- bucket.updated) / 1e9
            bucket.tokens = min(burst, bucket.tokens + max(0, elapsed) * perSecond)
            bucket.updated = now
            guard bucket.tokens >= Double(cost) else {
                table[key] = bucket
                return false
            }
            bucket.tokens -= Double(cost)
            table[key] = bucket
            return true
        }
    }
}
