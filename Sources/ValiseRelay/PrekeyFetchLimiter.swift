import NIOConcurrencyHelpers
import NIOCore
import ValiseCrypto

/// A token bucket per device key for prekey fetches: each fetch hands out one of a member's
/// one-time prekeys, so one device must not be able to drain them. Keys are admitted
/// devices only, so the table is bounded by the directory.
final class PrekeyFetchLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    private let perSecond: Double
    private let burst: Double
    private let clock: @Sendable () -> UInt64
    private let buckets = NIOLockedValueBox<[AgreementPublicKey: Bucket]>([:])

    /// `clock` in nanoseconds (monotonic); tests pass their own.
    init(perMinute: Double, clock: @escaping @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }) {
        perSecond = perMinute / 60
        burst = max(1, perMinute)
        self.clock = clock
    }

    /// Takes a token for `key`; false when it has none left.
    func allow(_ key: AgreementPublicKey) -> Bool {
        let now = clock()
        return buckets.withLockedValue { table in
            var bucket = table[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double(now &- bucket.updated) / 1e9
            bucket.tokens = min(burst, bucket.tokens + max(0, elapsed) * perSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                table[key] = bucket
                return false
            }
            bucket.tokens -= 1
            table[key] = bucket
            return true
        }
    }
}
