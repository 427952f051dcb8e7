import Testing
import ValiseClient

/// The client's token bucket for the relay's send rate, on a clock the test moves.
@Suite("Send pacer")
struct SendPacerTests {
    static let second: UInt64 = 1_000_000_000

    @Test("a relay that says nothing (or nonsense) is not paced")
    func unpaced() {
        #expect(SendPacer(perSecond: 0, burst: 20, now: 0) == nil)
        #expect(SendPacer(perSecond: 5, burst: 0, now: 0) == nil)
        #expect(SendPacer(perSecond: .nan, burst: 20, now: 0) == nil)
        #expect(SendPacer(perSecond: .infinity, burst: 20, now: 0) == nil)
        #expect(SendPacer(perSecond: -1, burst: 20, now: 0) == nil)
    }

    @Test("half the burst goes at once, then one send per interval, never faster than the rate")
    func pacing() throws {
        var pacer = try #require(SendPacer(perSecond: 5, burst: 20, now: 0))
        var now: UInt64 = 0
        var sent = 0
        while pacer.delay(now: now) == 0 {
            pacer.take(now: now)
            sent += 1
        }
        #expect(sent == 10, "half of the relay's burst of 20")
        #expect(pacer.delay(now: now) == Self.second / 5)
        // Following its delays for 100 s, it sends 5 a second and no more.
        for _ in 0..<500 {
            now += pacer.delay(now: now)
            pacer.take(now: now)
            sent += 1
        }
        #expect(sent == 510)
        #expect(now >= 100 * Self.second - 1000 && now <= 100 * Self.second + 1000)
    }

    @Test("an idle pacer holds at most half the burst; after RATE_LIMITED it waits a whole interval")
    func capacityAndDrain() throws {
        var pacer = try #require(SendPacer(perSecond: 5, burst: 20, now: 0))
        #expect(pacer.capacity == 10)
        var sent = 0
        while pacer.delay(now: 3600 * Self.second) == 0 && sent < 100 {
            pacer.take(now: 3600 * Self.second)
            sent += 1
        }
        #expect(sent == 10)
        pacer.drain(now: 3600 * Self.second)
        #expect(pacer.delay(now: 3600 * Self.second) == Self.second / 5)
        // A burst of one still lets one send go at a time.
        var single = try #require(SendPacer(perSecond: 1, burst: 1, now: 0))
        #expect(single.delay(now: 0) == 0)
        single.take(now: 0)
        #expect(single.delay(now: 0) == Self.second)
    }
}
