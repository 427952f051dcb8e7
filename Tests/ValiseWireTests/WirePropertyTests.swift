import Testing
import ValiseTestSupport
import ValiseCrypto
@testable import ValiseWire

/// Random message lists and random chunkings through a relay and a client in memory, from
/// fixed seeds (SplitMix64), so any failure replays exactly: its seed is in the message.
@Suite("Connection: everything sent arrives exactly once, in order (property)")
struct WirePropertyTests {
    static let cases = 200

    /// A random message: mostly short, sometimes around a fragment boundary, rarely large.
    /// Without `allowLarge` (tiny pieces, slow in a debug build), at most 600 bytes.
    static func message(_ rng: inout SplitMix64, allowLarge: Bool) -> [UInt8] {
        let length: Int
        switch rng.int(in: 0...99) {
        case 0..<70: length = rng.int(in: 0...64)
        case 70..<90: length = rng.int(in: 65...(allowLarge ? 2_000 : 600))
        case 90..<96: length = allowLarge ? rng.int(in: 65_516...65_521) : rng.int(in: 0...10)
        default: length = allowLarge ? rng.int(in: 65_522...135_000) : rng.int(in: 0...10)
        }
        return rng.bytes(length)
    }

    static func chunking(_ rng: inout SplitMix64) -> Chunking {
        switch rng.int(in: 0...4) {
        case 0: .oneByte
        case 1: .whole
        case 2: .random(seed: rng.next(), maximum: rng.int(in: 2...16))
        case 3: .random(seed: rng.next(), maximum: rng.int(in: 17...1_000))
        default: .random(seed: rng.next(), maximum: rng.int(in: 1_001...80_000))
        }
    }

    @Test("the seeds cover every kind of chunking")
    func coverage() {
        var counts: [String: Int] = [:]
        for index in 0..<UInt64(Self.cases) {
            var rng = SplitMix64(seed: 0x5EED_0000 + index)
            let kind = switch Self.chunking(&rng) {
            case .whole: "whole"
            case .oneByte: "one byte"
            case .random(_, let maximum): maximum <= 16 ? "tiny" : maximum <= 1_000 ? "small" : "large"
            }
            counts[kind, default: 0] += 1
        }
        #expect(counts.count == 5)
        #expect(counts.values.allSatisfy { $0 >= 20 }, "\(counts)")
    }

    @Test("random message lists and chunkings: both directions arrive intact", arguments: 0..<UInt64(cases))
    func exactlyOnceInOrder(index: UInt64) throws {
        let seed = 0x5EED_0000 + index
        var rng = SplitMix64(seed: seed)
        let chunking = Self.chunking(&rng)
        // Small pieces are slow in a debug build: with them, messages stay small.
        let allowLarge: Bool
        switch chunking {
        case .whole: allowLarge = true
        case .oneByte: allowLarge = false
        case .random(_, let maximum): allowLarge = maximum > 1_000
        }
        var link = Link(chunking: chunking)
        let context: Comment = "seed \(seed), \(chunking.testDescription)"

        link.handshake()
        #expect(link.relayEvents == [.authenticate(link.clientKey.publicKey)], context)

        // Up to the limit of messages before admission, then the admission.
        var sentByClient: [[UInt8]] = []
        var sentByRelay: [[UInt8]] = []
        for _ in 0..<rng.int(in: 0...RelayConnectionState.maximumBufferedBeforeAdmission) {
            let message = Self.message(&rng, allowLarge: allowLarge)
            sentByClient.append(message)
            link.clientSends(message)
            if rng.int(in: 0...2) == 0 { link.pump(limit: rng.int(in: 1...200)) }
        }
        link.pump(limit: rng.int(in: 0...5_000))
        if rng.int(in: 0...1) == 0 { link.pump() }
        link.admit()

        // Then sends both ways, interleaved with partial deliveries.
        for _ in 0..<rng.int(in: 0...24) {
            let message = Self.message(&rng, allowLarge: allowLarge)
            if rng.int(in: 0...1) == 0 {
                sentByClient.append(message)
                link.clientSends(message)
            } else {
                sentByRelay.append(message)
                link.relaySends(message)
            }
            if rng.int(in: 0...1) == 0 { link.pump(limit: rng.int(in: 1...3_000)) }
        }
        link.pump()

        #expect(link.relayCloses.isEmpty, context)
        #expect(link.clientCloses.isEmpty, context)
        #expect(link.relayDelivered.count == sentByClient.count, context)
        #expect(link.relayDelivered == sentByClient, context)
        #expect(link.clientDelivered.count == sentByRelay.count, context)
        #expect(link.clientDelivered == sentByRelay, context)
        #expect(link.relay.bufferedByteCount == 0, context)
        #expect(link.relayEvents.filter { if case .authenticate = $0 { true } else { false } }.count == 1, context)
    }
}
