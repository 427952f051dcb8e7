import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseTestSupport
import ValiseWire

/// Attachment blobs across relay links, on three real relays (docs/PROTOCOL.md, "Blobs over
/// links"): uploaded once at the sender's home, forwarded once to the relay where its
/// recipients are homed, fetched there, and deleted at both ends.
@Suite("Relay links: blobs (real valised)", .serialized)
struct FederationBlobTests {
    /// A device of `member` connected to `relay` by raw relay-protocol requests.
    static func connect(_ world: FederationWorld, _ member: String, to relay: String) async throws -> RelayClient {
        let home = ValiseHome(path: world.path(member))
        let key = try DeviceKeystore(home: home).unlock(passphrase: SecretBytes(copying: Array(world.passphrase.utf8))).identity.transportKey
        let state = try PinnedOrganisation(home: home).load(now: UInt64(Date().timeIntervalSince1970)).state
        return try await RelayClient.connect(
            host: "127.0.0.1", port: world.ports[relay] ?? 0, clientKey: key, relayKey: try #require(state.relays[relay]).noiseKey).client
    }

    static func blobs(_ world: FederationWorld, at relay: String) throws -> (count: Int, forwards: Int) {
        let blobs = try world.status(relay)["blobs"] as? [String: Any]
        return (blobs?["count"] as? Int ?? -1, blobs?["forwardsWaiting"] as? Int ?? 0)
    }

    static func state(_ message: WireRelayMessage) throws -> WireBlobState {
        guard case .blobState(let state)? = message.body else { throw ClientError(kind: .failure, code: "test", message: "not a BlobState: \(message)") }
        return state
    }

    /// Uploads `bytes` at the member's home relay, declaring `count` fetches at `relay`.
    static func upload(_ bytes: [UInt8], _ world: FederationWorld, from member: String, fetchesAt relay: String, count: UInt32) async throws {
        let client = try await Self.connect(world, member, to: FederationWorld.home(of: member))
        var upload = WireBlobUpload()
        upload.blobID = Data(BLAKE2b.hash(bytes, outputByteCount: 32))
        upload.size = UInt64(bytes.count)
        var fetches = WireBlobFetches()
        fetches.relay = relay
        fetches.count = count
        upload.fetches = [fetches]
        #expect(try Self.state(try await client.request(.blobUpload(upload))).committed == 0)
        var complete = false
        for offset in stride(from: 0, to: bytes.count, by: 262_144) {
            var chunk = WireBlobChunk()
            chunk.blobID = upload.blobID
            chunk.offset = UInt64(offset)
            chunk.data = Data(bytes[offset..<min(offset + 262_144, bytes.count)])
            complete = try Self.state(try await client.request(.blobChunk(chunk))).complete
        }
        #expect(complete, "the upload completed")
        await client.close()
    }

    @Test("a blob for a relay that is down waits at the origin, and crosses once the link is back")
    func waitsForTheLink() async throws {
        let world = try FederationWorld(members: ["carol@hq", "bob@geneva"])
        for member in world.members { try world.member(member, ["sync"]) }
        world.stopRelay("geneva")
        try await Self.upload(Random.bytes(count: 300_000), world, from: "carol@hq", fetchesAt: "geneva", count: 1)
        let held = try Self.blobs(world, at: "hq")
        #expect(held.count == 1 && held.forwards == 1, "hq keeps the blob with its forward while geneva is down")
        try world.startRelay("geneva")
        try world.waitForLinks()
        // Generous: alone this takes a few seconds, but beside the whole suite on two cores a
        // relay's start, the link's backoff and the store's fsyncs have taken over 30 s.
        let crossed = try world.wait(seconds: 90) { try Self.blobs(world, at: "geneva").count == 1 && Self.blobs(world, at: "hq").count == 0 }
        #expect(crossed, "the blob crossed once the link came back, and hq let its copy go")
    }

    @Test("a blob over the destination's queue.maxBlobBytes is refused there for good: the origin ends the forward and lets the blob go")
    func refusedForGood() async throws {
        let world = try FederationWorld(members: ["carol@hq", "bob@geneva"])
        for member in world.members { try world.member(member, ["sync"]) }
        world.stopRelay("geneva")
        try world.startRelay("geneva", environment: ["VALISED_QUEUE_MAX_BLOB_BYTES": "100000"])
        try world.waitForLinks()
        try await Self.upload(Random.bytes(count: 300_000), world, from: "carol@hq", fetchesAt: "geneva", count: 1)
        let ended = try world.wait(seconds: 30) { try Self.blobs(world, at: "hq").count == 0 }
        #expect(ended, "hq ended the forward after geneva's PERMANENT BAD_BLOB, and deleted the blob")
        #expect(try Self.blobs(world, at: "geneva").count == 0, "geneva holds nothing of it")
        let logs = try FileManager.default.contentsOfDirectory(atPath: world.directory.path).filter { $0.hasPrefix("hq-") && $0.hasSuffix(".log") }
        let text = try logs.map { try String(contentsOfFile: world.path($0), encoding: .utf8) }.joined()
        #expect(text.contains("relay refused a blob for good"), "hq logs the refusal (at info, with the blob id's prefix only)")
    }

    @Test("a blob uploaded at hq for two devices at geneva crosses the link once, is fetched there twice, and is deleted at both relays")
    func crossesOnce() async throws {
        let world = try FederationWorld(members: ["carol@hq", "bob@geneva", "dalia@geneva"])
        for member in world.members { try world.member(member, ["sync"]) }
        let bytes = Random.bytes(count: 600_000)
        let id = Data(BLAKE2b.hash(bytes, outputByteCount: 32))

        // carol uploads at hq, declaring two fetches behind geneva and none at hq.
        try await Self.upload(bytes, world, from: "carol@hq", fetchesAt: "geneva", count: 2)

        // Custody passes to geneva, once; hq, with no fetch of its own, deletes its copy.
        // Generous: alone this takes a few seconds, but beside the whole suite on two cores a
        // relay's start, the link's backoff and the store's fsyncs have taken over 30 s.
        let crossed = try world.wait(seconds: 90) { try Self.blobs(world, at: "geneva").count == 1 && Self.blobs(world, at: "hq").count == 0 }
        let (geneva, hq) = (try Self.blobs(world, at: "geneva"), try Self.blobs(world, at: "hq"))
        #expect(crossed, "geneva holds \(geneva.count) blobs, hq \(hq.count)")

        // Each device at geneva fetches it whole; the blob goes after the second BlobFetched.
        for (index, member) in ["bob@geneva", "dalia@geneva"].enumerated() {
            let device = try await Self.connect(world, member, to: "geneva")
            var received: [UInt8] = []
            for _ in 0..<10 where received.count < bytes.count {
                var fetch = WireBlobFetch()
                fetch.blobID = id
                fetch.offset = UInt64(received.count)
                fetch.length = 262_144
                guard case .blobData(let data)? = try await device.request(.blobFetch(fetch)).body, !data.data.isEmpty else {
                    Issue.record("no BlobData for \(member) at \(received.count)")
                    break
                }
                received += data.data
            }
            #expect(received == bytes, "\(member) fetched the blob as uploaded")
            var fetched = WireBlobFetched()
            fetched.blobID = id
            try await device.post(.blobFetched(fetched))
            let expected = index == 0 ? 1 : 0
            #expect(try world.wait(seconds: 10) { try Self.blobs(world, at: "geneva").count == expected }, "after \(member)'s fetch")
            await device.close()
        }
    }
}
