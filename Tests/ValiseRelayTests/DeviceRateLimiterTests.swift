import Foundation
import NIOConcurrencyHelpers
import Testing
import ValiseCrypto
@testable import ValiseRelay

@Suite("Device rate limiter and limit counters")
struct DeviceRateLimiterTests {
    /// Nanoseconds the test moves by hand.
    final class Clock: Sendable {
        private let time = NIOLockedValueBox<UInt64>(1_000_000_000)
        var now: UInt64 { time.withLockedValue { $0 } }
        func advance(seconds: Double) { time.withLockedValue { $0 += UInt64(seconds * 1e9) } }
    }

    @Test("a device gets its burst, then the rate; another device has its own bucket")
    func bucket() {
        let clock = Clock()
        let limiter = DeviceRateLimiter(perSecond: 2, burst: 5) { clock.now }
        let (first, second) = (AgreementPrivateKey().publicKey, AgreementPrivateKey().publicKey)
        #expect((0..<5).allSatisfy { _ in limiter.allow(first) })
        #expect(!limiter.allow(first))
        #expect(limiter.allow(second), "the other device is unaffected")
        clock.advance(seconds: 0.4)
        #expect(!limiter.allow(first), "0.8 tokens after 0.4 s: not yet")
        clock.advance(seconds: 0.1)
        #expect(limiter.allow(first), "one token after 0.5 s at 2 a second")
        #expect(!limiter.allow(first))
        clock.advance(seconds: 3600)
        #expect((0..<5).allSatisfy { _ in limiter.allow(first) }, "refills to the burst, no further")
        #expect(!limiter.allow(first))
    }

    @Test("per minute: so many a minute, the burst at once; a cost takes that many tokens or none")
    func perMinuteAndCost() {
        let clock = Clock()
        let key = AgreementPrivateKey().publicKey
        let limiter = DeviceRateLimiter(perSecond: 3.0 / 60, burst: 5) { clock.now }
        #expect(limiter.allow(key, cost: 4))
        #expect(!limiter.allow(key, cost: 2), "one token left: a cost of 2 takes none")
        #expect(limiter.allow(key))
        #expect(!limiter.allow(key))
        clock.advance(seconds: 20)
        #expect(limiter.allow(key) && !limiter.allow(key), "3 a minute: one after 20 s")
        clock.advance(seconds: 3600)
        #expect(limiter.allow(key, cost: 5) && !limiter.allow(key), "refilled to the burst, no further")
    }

    @Test("the counters' status file reads back; a damaged or oversized one is not read")
    func statusFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("limits-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(LimitCounters.read(directory: directory) == nil)

        let counters = LimitCounters(since: 1_700_000_000)
        counters.count(.sendRate)
        counters.count(.sendRate)
        counters.count(.slowReader)
        try counters.write(toDirectory: directory, updated: 1_700_000_060)
        let read = try #require(LimitCounters.read(directory: directory))
        #expect(read.since == 1_700_000_000 && read.updated == 1_700_000_060)
        #expect(read.counts["sendRate"] == 2 && read.counts["slowReader"] == 1 && read.counts["mailboxFull"] == 0)
        #expect(Set(read.counts.keys) == Set(LimitCounters.Limit.allCases.map(\.rawValue)))

        let path = directory + "/" + LimitCounters.fileName
        for damaged in [Data("{\"since\": 1".utf8), Data("{\"since\": 1, \"updated\": 2, \"counts\": {\"sendRate\": -1}}".utf8),
                        Data(repeating: 0x20, count: 5000)] {
            try damaged.write(to: URL(fileURLWithPath: path))
            #expect(LimitCounters.read(directory: directory) == nil)
        }
    }

    @Test("recent counts: per minute for the last 15 minutes, written to the file as recent; older minutes drop out")
    func recentCounts() throws {
        let now = NIOLockedValueBox<UInt64>(1_700_000_000)
        let counters = LimitCounters(since: 1_700_000_000) { now.withLockedValue { $0 } }
        counters.count(.sendRate, by: 2)
        now.withLockedValue { $0 += 10 * 60 }
        counters.count(.sendRate)
        counters.count(.mailboxFull)
        #expect(counters.recent(now: now.withLockedValue { $0 }) == [.sendRate: 3, .mailboxFull: 1])
        // Fifteen minutes after the first count, only the later minute is recent.
        let later: UInt64 = 1_700_000_000 + 15 * 60
        #expect(counters.recent(now: later) == [.sendRate: 1, .mailboxFull: 1])
        #expect(counters.figures(now: later) != counters.figures(now: 1_700_000_000), "a minute leaving the window changes the file")
        #expect(counters.snapshot[.sendRate] == 3, "the counts since the start keep everything")

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recent-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try counters.write(toDirectory: directory, updated: later)
        let read = try #require(LimitCounters.read(directory: directory))
        #expect(read.recent == ["sendRate": 1, "mailboxFull": 1] && read.recentMinutes == 15)
        // An older relay's file, without recent counts, reads with none.
        try Data("{\"since\": 1, \"updated\": 2, \"counts\": {\"sendRate\": 4}}".utf8).write(to: URL(fileURLWithPath: directory + "/" + LimitCounters.fileName))
        #expect(LimitCounters.read(directory: directory)?.recent == [:])
    }
}
