import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import Testing
@testable import ValiseRelay

@Suite("Connection limiter")
struct ConnectionLimiterTests {
    /// A clock the test moves by hand.
    final class Clock: Sendable {
        private let time = NIOLockedValueBox(NIODeadline.uptimeNanoseconds(1_000_000_000))
        var now: NIODeadline { time.withLockedValue { $0 } }
        func advance(seconds: Double) { time.withLockedValue { $0 = $0 + .nanoseconds(Int64(seconds * 1e9)) } }
    }

    static func limits(total: Int = 100, perAddress: Int = 3, rate: Double = 2, burst: Int = 4) -> RelayConfiguration.Limits {
        var limits = RelayConfiguration.Limits()
        limits.maximumConnections = total
        limits.maximumConnectionsPerAddress = perAddress
        limits.handshakesPerSecondPerAddress = rate
        limits.handshakeBurstPerAddress = burst
        return limits
    }

    @Test("per-address and total limits refuse with their reason; release gives the place back")
    func limits() {
        let clock = Clock()
        let limiter = ConnectionLimiter(limits: Self.limits(total: 5, perAddress: 3, burst: 10)) { clock.now }
        for _ in 0..<3 { #expect(limiter.acquire("10.0.0.1") == nil) }
        #expect(limiter.acquire("10.0.0.1") == .tooManyFromAddress)
        #expect(limiter.acquire("10.0.0.2") == nil)
        #expect(limiter.acquire("10.0.0.3") == nil)
        #expect(limiter.acquire("10.0.0.4") == .tooManyConnections)
        limiter.release("10.0.0.1")
        #expect(limiter.openConnections == 4)
        #expect(limiter.acquire("10.0.0.1") == nil)
    }

    @Test("without guarded memory for another connection's keys, new connections are refused and nothing is counted")
    func secureMemory() {
        let available = Mutex(false)
        let limiter = ConnectionLimiter(limits: Self.limits(total: 5, perAddress: 3, burst: 10), secureMemoryAvailable: { available.withLock { $0 } })
        #expect(limiter.acquire("10.0.0.1") == .secureMemory)
        #expect(limiter.openConnections == 0)
        available.withLock { $0 = true }
        #expect(limiter.acquire("10.0.0.1") == nil)
        #expect(limiter.openConnections == 1)
    }

    @Test("the handshake rate is a token bucket: a burst, then the rate")
    func rate() {
        let clock = Clock()
        let limiter = ConnectionLimiter(limits: Self.limits(perAddress: 100, rate: 2, burst: 4)) { clock.now }
        for _ in 0..<4 { #expect(limiter.acquire("10.0.0.1") == nil) }
        #expect(limiter.acquire("10.0.0.1") == .handshakeRate)
        clock.advance(seconds: 0.5)
        #expect(limiter.acquire("10.0.0.1") == nil)
        #expect(limiter.acquire("10.0.0.1") == .handshakeRate)
    }

    @Test("an address is forgotten once it has nothing open and its bucket has refilled")
    func forgetsAddresses() {
        let clock = Clock()
        let limiter = ConnectionLimiter(limits: Self.limits(total: 100_000, perAddress: 10, rate: 10, burst: 4)) { clock.now }
        // Two quick connections leave the bucket below full at release.
        #expect(limiter.acquire("10.0.0.1") == nil)
        #expect(limiter.acquire("10.0.0.1") == nil)
        limiter.release("10.0.0.1")
        limiter.release("10.0.0.1")
        #expect(limiter.trackedAddresses == 1)
        // Ten thousand addresses that connect once or twice and go, one per millisecond
        // (a bucket refills in 0.2 s): the table holds the recent ones, not all of them.
        var most = 0
        for index in 0..<10_000 {
            let address = "10.1.\(index / 256).\(index % 256)"
            #expect(limiter.acquire(address) == nil)
            if index % 2 == 0 { _ = limiter.acquire(address); limiter.release(address) }
            limiter.release(address)
            most = max(most, limiter.trackedAddresses)
            clock.advance(seconds: 0.001)
        }
        #expect(most <= 1_025, "\(most) addresses remembered at most")
        #expect(limiter.openConnections == 0)
    }
}
