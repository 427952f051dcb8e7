import Foundation
import Logging
import Testing
import ValiseCrypto
@testable import ValiseRelay
import ValiseStore
import ValiseTestSupport
import ValiseWire

/// Arbitrary blob requests through the relay's checks and into a real blob store, as the
/// fuzz targets do for decoding: whatever the values, the relay answers (BlobState,
/// BlobData or an Error) and never crashes, and the store stays within its quota.
@Suite("Relay: arbitrary blob requests")
struct BlobRequestRobustnessTests {
    @Test("thousands of random BlobUpload, BlobChunk, BlobFetch and BlobFetched values are answered without a crash")
    func randomRequests() throws {
        let fixture = try SharedRelayFixture(blobs: true)
        let store = try #require(fixture.blobStore)
        var queue = RelayConfiguration.Queue()
        queue.maximumBlobStoreBytes = 3_000_000
        queue.maximumBlobBytesPerDevice = 2_000_000
        let blobs = RelayBlobs(store: store, queue: queue, freeSpace: { nil }, clock: { WallClock.seconds() }, logger: Logger(label: "test"))
        let lane = RelayBlobs.BlobLane()
        var processor = RelayRequestProcessor(admission: .device(fixture.alice.name), settings: .init(
            maximumEntriesPerFetch: 1000, maximumEnvelopeBytes: 65_536, deliveryWindow: 32, defaultTTL: .week, maximumTTL: .month,
            maximumBlobBytes: 1_000_000))
        let directory = fixture.server.directory.snapshot
        _ = processor.handle(Self.encode(1, .hello(Self.hello)), directory: directory)

        var generator = SplitMix64(seed: 20)
        // A few real blobs, so that some uploads complete and fetches find bytes.
        let real = (0..<3).map { n -> [UInt8] in
            var bytes = SplitMix64(seed: UInt64(n) + 100)
            return bytes.bytes([1, 1000, 300_000][n])
        }
        let ids = real.map { Data(BLAKE2b.hash($0, outputByteCount: 32)) } + [Data(repeating: 0, count: 32), Data([1, 2, 3]), Data()]
        var answers: [String: Int] = [:]
        for round in 0..<3000 {
            let pick = Int(generator.next() % 6)
            let id = ids[Int(generator.next() % UInt64(ids.count))]
            let real = pick < 3 ? real[pick] : nil
            let body: WireClientMessage.OneOf_Body
            switch generator.next() % 4 {
            case 0:
                var upload = WireBlobUpload()
                upload.blobID = id
                upload.size = [0, 1, 1000, 300_000, 1_000_001, UInt64.max, UInt64(real?.count ?? 7)][Int(generator.next() % 7)]
                upload.ttl = WireTTLClass(rawValue: Int(generator.next() % 7)) ?? .default
                upload.fetches = (0..<Int(generator.next() % 4)).map { _ in
                    var entry = WireBlobFetches()
                    entry.relay = ["", "hq", "geneva", "\u{0}"][Int(generator.next() % 4)]
                    entry.count = [0, 1, 999, 1000, UInt32.max][Int(generator.next() % 5)]
                    return entry
                }
                body = .blobUpload(upload)
            case 1:
                var chunk = WireBlobChunk()
                chunk.blobID = id
                chunk.offset = [0, 1, 262_144, 299_999, UInt64.max][Int(generator.next() % 5)]
                let count = [0, 1, 1000, 262_144, 262_145][Int(generator.next() % 5)]
                if let real, chunk.offset < UInt64(real.count) {
                    chunk.data = Data(real[Int(chunk.offset)..<min(real.count, Int(chunk.offset) + count)])
                } else {
                    chunk.data = Data(generator.bytes(count))
                }
                body = .blobChunk(chunk)
            case 2:
                var fetch = WireBlobFetch()
                fetch.blobID = id
                fetch.offset = [0, 1, 999, 1000, UInt64.max][Int(generator.next() % 5)]
                fetch.length = [0, 1, 262_144, 262_145, UInt32.max][Int(generator.next() % 5)]
                body = .blobFetch(fetch)
            default:
                var fetched = WireBlobFetched()
                fetched.blobID = id
                body = .blobFetched(fetched)
            }
            let answer: WireRelayMessage?
            switch processor.handle(Self.encode(UInt64(round + 2), body), directory: directory) {
            case .reply(let reply): answer = reply
            case .blobUpload(let requestID, let request):
                answer = try blobs.upload(request, requestID: requestID, device: fixture.alice.transport.publicKey, lane: lane)
            case .blobChunk(let requestID, let id, let offset, let bytes):
                answer = try blobs.chunk(id, offset: offset, bytes: bytes, requestID: requestID, lane: lane)
            case .blobFetch(let requestID, let id, let offset, let length):
                answer = try blobs.fetch(id, offset: offset, length: length, requestID: requestID)
            case .blobFetched(let id):
                blobs.fetched(id)
                answer = nil
            case .acknowledge:
                answer = nil
            default:
                Issue.record("an outcome that is not a blob request's")
                answer = nil
            }
            switch answer?.body {
            case .blobState?: answers["state", default: 0] += 1
            case .blobData(let data)?:
                answers["data", default: 0] += 1
                #expect(data.data.count <= 262_144)
            case .error(let error)?: answers["\(error.code)", default: 0] += 1
            case nil: answers["none", default: 0] += 1
            default: Issue.record("an answer that is not a blob request's: \(String(describing: answer))")
            }
        }
        #expect(try store.blobStatistics(now: WallClock.seconds()).bytes <= 3_000_000)
        // The draw reaches past the checks into the store, both ways.
        #expect(answers["state", default: 0] > 0 && answers["badRequest", default: 0] > 0, "\(answers)")
    }

    static var hello: WireHello {
        var hello = WireHello()
        hello.protocolVersion = RelayRequestProcessor.protocolVersion
        return hello
    }

    static func encode(_ id: UInt64, _ body: WireClientMessage.OneOf_Body) -> [UInt8] {
        var message = WireClientMessage()
        message.requestID = id
        message.body = body
        return WireCodec.encode(message)
    }
}
