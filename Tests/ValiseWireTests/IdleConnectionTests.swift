import Foundation
import Testing
import ValiseCrypto
import ValiseTestSupport
@testable import ValiseWire

/// What an idle connection holds: a relay keeps thousands of them (issue 7, the connections
/// benchmark), so per-connection memory and memory mappings must stay small.
@Suite("Connection: what an idle connection holds")
struct IdleConnectionTests {
    @Test("a decoder that has given out a large frame gives its storage back")
    func largeFrameStorageReleased() throws {
        var rng = SplitMix64(seed: 11)
        let large = rng.bytes(FrameDecoder.maximumFrameLength)
        var decoder = FrameDecoder()
        decoder.append(FrameDecoder.frame(large))
        #expect(decoder.storedCapacity > FrameDecoder.retainedCapacity)
        #expect(try decoder.nextFrame() == large)
        #expect(decoder.storedCapacity <= FrameDecoder.retainedCapacity)
        #expect(decoder.bufferedByteCount == 0)

        // Small frames keep their storage for the next read, and decode as before.
        decoder.append(FrameDecoder.frame([1, 2, 3]))
        #expect(try decoder.nextFrame() == [1, 2, 3])
        decoder.append(FrameDecoder.frame([4]))
        #expect(try decoder.nextFrame() == [4])
    }

    @Test("a large frame cut in pieces, then small ones: storage shrinks once it is drained")
    func largeFrameInPieces() throws {
        var rng = SplitMix64(seed: 12)
        let large = rng.bytes(40_000)
        let bytes = FrameDecoder.frame(large) + FrameDecoder.frame([9, 9])
        var decoder = FrameDecoder()
        var frames: [[UInt8]] = []
        for start in stride(from: 0, to: bytes.count, by: 1_000) {
            decoder.append(bytes[start..<min(start + 1_000, bytes.count)])
            while let frame = try decoder.nextFrame() { frames.append(frame) }
        }
        #expect(frames == [large, [9, 9]])
        #expect(decoder.storedCapacity <= FrameDecoder.retainedCapacity)
    }

    #if os(Linux)
    /// Before the shared arena, each session's two transport keys took a `sodium_malloc`
    /// region of four mappings each, so a relay stopped (sodium_malloc failed, then
    /// fatalError) at about 8,000 connections, when vm.max_map_count (65,530) ran out.
    @Test("hundreds of established sessions, both sides, take a handful of memory mappings")
    func sessionsTakeFewMappings() throws {
        let relayKey = AgreementPrivateKey()
        let clientKey = AgreementPrivateKey()
        let before = try Self.mappingCount()
        var held: [(RelayConnectionState, ClientConnectionState)] = []
        for _ in 0..<500 {
            var relay = RelayConnectionState(relayKey: relayKey, maximumMessageLength: 1 << 16)
            var client = ClientConnectionState(clientKey: clientKey, relayKey: relayKey.publicKey, maximumMessageLength: 1 << 16)
            var toRelay = client.start().compactMap(\.written)
            while !toRelay.isEmpty {
                let toClient = toRelay.flatMap { relay.receive($0) }.compactMap(\.written)
                toRelay = toClient.flatMap { client.receive($0) }.compactMap(\.written)
            }
            _ = relay.admit()
            #expect(relay.isEstablished && client.isEstablished)
            held.append((relay, client))
        }
        let after = try Self.mappingCount()
        #expect(held.count == 500)
        // 500 sessions × 2 sides × 2 keys × 4 mappings was 8,000 more.
        #expect(after - before < 100, "mappings grew by \(after - before)")

        // And they still work: one message each way on the last one.
        var (relay, client) = held.removeLast()
        let sealed = try #require(client.send([1, 2, 3]).first?.written)
        #expect(relay.receive(sealed).compactMap(\.delivered) == [[1, 2, 3]])
        let answer = try #require(relay.send([4]).first?.written)
        #expect(client.receive(answer).compactMap(\.delivered) == [[4]])
    }

    private static func mappingCount() throws -> Int {
        try String(contentsOfFile: "/proc/self/maps", encoding: .utf8).split(separator: "\n").count
    }
    #endif
}
