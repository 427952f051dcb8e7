import Foundation
import NIOCore
import Testing
@testable import ValiseClient
import ValiseCrypto
@testable import ValiseRelay
import ValiseStore
import ValiseTestSupport
import ValiseWire

/// Blob bytes for the relay tests: deterministic, named by their BLAKE2b-256.
private struct Blob {
    let bytes: [UInt8]
    var id: Data { Data(BLAKE2b.hash(bytes, outputByteCount: 32)) }
    var size: UInt64 { UInt64(bytes.count) }

    init(_ n: UInt64, size: Int) {
        var generator = SplitMix64(seed: n &* 0x9E37_79B9 ^ 0xB10B)
        bytes = generator.bytes(size)
    }
}

private let chunkBytes = RelayRequestProcessor.maximumBlobChunkBytes

private func upload(_ blob: Blob, fetches: [(String, UInt32)] = [("", 1)], ttl: WireTTLClass = .default) -> WireClientMessage.OneOf_Body {
    var upload = WireBlobUpload()
    upload.blobID = blob.id
    upload.size = blob.size
    upload.ttl = ttl
    upload.fetches = fetches.map { relay, count in
        var entry = WireBlobFetches()
        entry.relay = relay
        entry.count = count
        return entry
    }
    return .blobUpload(upload)
}

private func chunk(_ blob: Blob, offset: Int, bytes: [UInt8]? = nil) -> WireClientMessage.OneOf_Body {
    var chunk = WireBlobChunk()
    chunk.blobID = blob.id
    chunk.offset = UInt64(offset)
    chunk.data = Data(bytes ?? Array(blob.bytes[offset..<min(offset + chunkBytes, blob.bytes.count)]))
    return .blobChunk(chunk)
}

private func fetch(_ blob: Blob, offset: UInt64, length: UInt32 = 0) -> WireClientMessage.OneOf_Body {
    var fetch = WireBlobFetch()
    fetch.blobID = blob.id
    fetch.offset = offset
    fetch.length = length
    return .blobFetch(fetch)
}

private func fetched(_ blob: Blob) -> WireClientMessage.OneOf_Body {
    var fetched = WireBlobFetched()
    fetched.blobID = blob.id
    return .blobFetched(fetched)
}

private func state(_ answer: WireRelayMessage) throws -> WireBlobState {
    guard case .blobState(let state)? = answer.body else { throw QuietError("not a BlobState: \(answer)") }
    return state
}

/// Sends the blob's chunks from `offset` with up to 8 in flight, as a client does; returns
/// the BlobStates in the order sent.
private func sendChunks(_ blob: Blob, from offset: Int, to end: Int? = nil, client: RelayClient) async throws -> [WireBlobState] {
    let offsets = Array(stride(from: offset, to: end ?? blob.bytes.count, by: chunkBytes))
    var states: [WireBlobState] = []
    for window in stride(from: 0, to: offsets.count, by: 8) {
        // Started from one task, so they go out in order (tasks of a group would race, and a
        // chunk past the committed length is refused).
        let pending = offsets[window..<min(window + 8, offsets.count)].map { client.start(chunk(blob, offset: $0)) }
        for answer in pending { states.append(try state(try await RelayClient.answer(answer))) }
    }
    return states
}

/// The relay's error code for a request, or nil if it was answered.
private func refusal(_ client: RelayClient, _ body: WireClientMessage.OneOf_Body) async -> String? {
    do {
        _ = try await client.request(body)
        return nil
    } catch {
        return error.code
    }
}

private func text(from: String = "bob@jakarta") -> WireClientMessage.OneOf_Body {
    var send = WireSend()
    send.id = Data((0..<16).map { _ in UInt8.random(in: 0...255) })
    send.recipient = from
    send.precedence = .routine
    send.ttl = .day
    send.envelope = Data(repeating: 7, count: 100)
    return .send(send)
}

struct QuietError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite("Relay: attachment blobs")
struct BlobRelayTests {
    @Test("a blob uploads in pipelined chunks, reads back by range, and the last BlobFetched deletes it")
    func uploadFetchDelete() async throws {
        let fixture = try SharedRelayFixture(blobs: true)
        let port = try await fixture.start()
        let (alice, welcome) = try await RelayClient.connect(
            host: "127.0.0.1", port: port, clientKey: fixture.alice.transport, relayKey: fixture.keys.noise.publicKey, timeout: .seconds(Int64(60)))
        #expect(welcome.maxBlobBytes == 104_857_600)
        let blob = Blob(1, size: 3 * chunkBytes + 1000)
        let begun = try state(try await alice.request(upload(blob, fetches: [("hq", 2)])))
        #expect(begun.committed == 0 && !begun.complete && begun.size == blob.size)
        #expect(begun.expiresAt > WallClock.seconds() + 6 * 86_400)
        let states = try await sendChunks(blob, from: 0, client: alice)
        #expect(states.map(\.committed) == [1, 2, 3].map { UInt64($0 * chunkBytes) } + [blob.size])
        #expect(states.map(\.complete) == [false, false, false, true])
        // Uploaded again (a client that lost the last answer): complete at once.
        #expect(try state(try await alice.request(upload(blob, fetches: [("hq", 2)]))).complete)

        let bob = try await fixture.connect(fixture.bob.transport)
        for (offset, length) in [(UInt64(0), UInt32(0)), (UInt64(chunkBytes - 10), UInt32(20)), (blob.size - 5, UInt32(100))] {
            guard case .blobData(let data)? = try await bob.request(fetch(blob, offset: offset, length: length)).body else {
                Issue.record("no BlobData")
                continue
            }
            let end = min(Int(offset) + Int(length == 0 ? UInt32(chunkBytes) : length), blob.bytes.count)
            #expect(Array(data.data) == Array(blob.bytes[Int(offset)..<end]))
            #expect(data.size == blob.size && data.offset == offset)
        }
        #expect(await refusal(bob, fetch(blob, offset: blob.size)) == "relay-badRequest")
        #expect(await refusal(bob, fetch(blob, offset: 0, length: UInt32(chunkBytes + 1))) == "relay-badRequest")

        try await bob.post(fetched(blob))
        let store = try #require(fixture.blobStore)
        #expect(try await eventually("the first fetch counted") { try store.blob(id: BlobID(bytes: Array(blob.id))!, now: WallClock.seconds())?.fetchesLeft == 1 ? true : nil })
        try await alice.post(fetched(blob))
        #expect(try await eventually("the blob deleted") { try store.blobStatistics(now: WallClock.seconds()).count == 0 ? true : nil })
        #expect(await refusal(bob, fetch(blob, offset: 0)) == "relay-noSuchBlob")
        await alice.close()
        await bob.close()
        await fixture.stop()
    }

    @Test("after a cut connection, BlobUpload again says what is committed and the upload resumes from there")
    func resume() async throws {
        let fixture = try SharedRelayFixture(blobs: true)
        _ = try await fixture.start()
        let blob = Blob(2, size: 5 * chunkBytes)
        let first = try await fixture.connect(fixture.alice.transport)
        _ = try state(try await first.request(upload(blob)))
        _ = try await sendChunks(blob, from: 0, to: 2 * chunkBytes, client: first)
        // Not complete: not served.
        #expect(await refusal(first, fetch(blob, offset: 0)) == "relay-noSuchBlob")
        await first.close()

        let second = try await fixture.connect(fixture.alice.transport)
        // A chunk before its BlobUpload on this connection is refused, and changes nothing.
        #expect(await refusal(second, chunk(blob, offset: 2 * chunkBytes)) == "relay-badRequest")
        let resumed = try state(try await second.request(upload(blob)))
        #expect(resumed.committed == UInt64(2 * chunkBytes) && !resumed.complete)
        // A gap is refused; a chunk sent twice is answered with what is committed.
        #expect(await refusal(second, chunk(blob, offset: 3 * chunkBytes)) == "relay-badRequest")
        #expect(try state(try await second.request(chunk(blob, offset: chunkBytes))).committed == UInt64(2 * chunkBytes))
        let states = try await sendChunks(blob, from: Int(resumed.committed), client: second)
        #expect(states.last?.complete == true)
        await second.close()
        await fixture.stop()
    }

    @Test("tampered bytes are refused BLOB_MISMATCH at the last chunk and nothing is kept")
    func tampered() async throws {
        let fixture = try SharedRelayFixture(blobs: true)
        _ = try await fixture.start()
        let alice = try await fixture.connect(fixture.alice.transport)
        let blob = Blob(3, size: chunkBytes + 500)
        _ = try state(try await alice.request(upload(blob)))
        _ = try state(try await alice.request(chunk(blob, offset: 0)))
        var last = Array(blob.bytes[chunkBytes...])
        last[100] ^= 0x40
        #expect(await refusal(alice, chunk(blob, offset: chunkBytes, bytes: last)) == "relay-blobMismatch")
        #expect(try fixture.blobStore?.blobStatistics(now: WallClock.seconds()) == BlobStatistics())
        #expect(await refusal(alice, fetch(blob, offset: 0)) == "relay-noSuchBlob")
        // Declared again, it starts from nothing.
        #expect(try state(try await alice.request(upload(blob))).committed == 0)
        await alice.close()
        await fixture.stop()
    }

    @Test("a blob over queue.maxBlobBytes is refused TOO_LARGE before any byte; bad declarations BAD_REQUEST")
    func bounds() async throws {
        let fixture = try SharedRelayFixture(blobs: true) { $0.queue.maximumBlobBytes = 100_000 }
        let port = try await fixture.start()
        let (alice, welcome) = try await RelayClient.connect(
            host: "127.0.0.1", port: port, clientKey: fixture.alice.transport, relayKey: fixture.keys.noise.publicKey, timeout: .seconds(Int64(60)))
        #expect(welcome.maxBlobBytes == 100_000)
        #expect(await refusal(alice, upload(Blob(4, size: 100_001))) == "relay-tooLarge")
        #expect(try state(try await alice.request(upload(Blob(4, size: 100_000)))).committed == 0)
        let small = Blob(5, size: 10)
        var shortID = WireBlobUpload()
        shortID.blobID = Data(repeating: 1, count: 31)
        shortID.size = 10
        shortID.fetches = [WireBlobFetches()]
        shortID.fetches[0].count = 1
        #expect(await refusal(alice, .blobUpload(shortID)) == "relay-badRequest")
        for fetches: [(String, UInt32)] in [[], [("", 0)], [("", 1001)], [("", 600), ("hq", 1)], [("geneva", 1)], [("", 600)] + [("hq", 500)]] {
            #expect(await refusal(alice, upload(small, fetches: fetches)) == "relay-badRequest", "\(fetches)")
        }
        #expect(await refusal(alice, upload(small, fetches: Array(repeating: ("", 1), count: 65))) == "relay-badRequest")
        #expect(await refusal(alice, chunk(small, offset: 0, bytes: [])) == "relay-badRequest")
        #expect(await refusal(alice, chunk(small, offset: 0, bytes: [UInt8](repeating: 0, count: chunkBytes + 1))) == "relay-badRequest")
        _ = try state(try await alice.request(upload(small)))
        #expect(await refusal(alice, chunk(small, offset: 5, bytes: Array(small.bytes[5...]) + [0])) == "relay-badRequest")
        #expect(await refusal(alice, chunk(small, offset: Int.max, bytes: [1])) == "relay-badRequest")
        await alice.close()
        await fixture.stop()
    }

    @Test("a device past its blob quota, or the relay past its own, hears BLOB_QUOTA while text still goes through")
    func quotas() async throws {
        let fixture = try SharedRelayFixture(blobs: true) {
            $0.queue.maximumBlobBytesPerDevice = 3000
            $0.queue.maximumBlobStoreBytes = 5000
        }
        _ = try await fixture.start()
        let alice = try await fixture.connect(fixture.alice.transport)
        let bob = try await fixture.connect(fixture.bob.transport)
        _ = try state(try await alice.request(upload(Blob(10, size: 2000))))
        // Declared again: already counted.
        _ = try state(try await alice.request(upload(Blob(10, size: 2000))))
        #expect(await refusal(alice, upload(Blob(11, size: 1001))) == "relay-blobQuota")
        _ = try state(try await alice.request(upload(Blob(12, size: 1000))))
        _ = try state(try await bob.request(upload(Blob(13, size: 2000))))
        // 5000 held: the relay's quota, though bob has room.
        #expect(await refusal(bob, upload(Blob(14, size: 1))) == "relay-blobQuota")
        guard case .accepted? = try await alice.request(text()).body else {
            Issue.record("the text was not accepted")
            return
        }
        await alice.close()
        await bob.close()
        await fixture.stop()
    }

    @Test("an admin's key may not upload or fetch blobs: NOT_ALLOWED")
    func adminNotAllowed() async throws {
        let fixture = try SharedRelayFixture(blobs: true)
        _ = try await fixture.start()
        let admin = try await fixture.connect(fixture.adminTransport)
        let blob = Blob(20, size: 100)
        #expect(await refusal(admin, upload(blob)) == "relay-notAllowed")
        #expect(await refusal(admin, chunk(blob, offset: 0)) == "relay-notAllowed")
        #expect(await refusal(admin, fetch(blob, offset: 0)) == "relay-notAllowed")
        await admin.close()
        await fixture.stop()
    }

    @Test("a relay without a blob store says max_blob_bytes 0 and refuses uploads TOO_LARGE")
    func noBlobStore() async throws {
        let fixture = try SharedRelayFixture()
        let port = try await fixture.start()
        let (alice, welcome) = try await RelayClient.connect(
            host: "127.0.0.1", port: port, clientKey: fixture.alice.transport, relayKey: fixture.keys.noise.publicKey, timeout: .seconds(Int64(60)))
        #expect(welcome.maxBlobBytes == 0)
        #expect(await refusal(alice, upload(Blob(21, size: 1))) == "relay-tooLarge")
        #expect(await refusal(alice, fetch(Blob(21, size: 1), offset: 0)) == "relay-noSuchBlob")
        await alice.close()
        await fixture.stop()
    }
}
