import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseWire

/// Attachment blobs on the real valised (issue 20): what a relay committed survives its
/// restart, the upload resumes from there, and `valised status` counts what it holds.
@Suite("Relay: attachment blobs (real valised)", .serialized)
struct BlobRelayIntegrationTests {
    static let alice = "alice@jakarta"
    static let bob = "bob@jakarta"

    static func request(_ device: QueueDevice, _ body: WireClientMessage.OneOf_Body) async throws -> WireRelayMessage {
        try await device.client.request(body)
    }

    static func state(_ message: WireRelayMessage) throws -> WireBlobState {
        guard case .blobState(let state)? = message.body else { throw ClientError(kind: .failure, code: "test", message: "not a BlobState: \(message)") }
        return state
    }

    @Test("an upload cut by a relay restart resumes from what was committed; the blob is fetched, counted down and deleted")
    func resumeAcrossRestart() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob], relayEnvironment: ["VALISED_QUEUE_MAX_BLOB_BYTES": "1000000"])
        let raw = RawBlobUpload(QueueFixture.bytes(600_000))
        let (bytes, upload) = (raw.bytes, raw.upload)
        let chunk = raw.chunk

        let first = try await QueueDevice(world: world, member: Self.alice)
        #expect(first.welcome.maxBlobBytes == 1_000_000)
        #expect(try Self.state(try await Self.request(first, .blobUpload(upload))).committed == 0)
        #expect(try Self.state(try await Self.request(first, chunk(0))).committed == 262_144)
        await first.close()
        try world.restartRelay(logName: "relay-2.log")

        let second = try await QueueDevice(world: world, member: Self.alice)
        let resumed = try Self.state(try await Self.request(second, .blobUpload(upload)))
        #expect(resumed.committed == 262_144 && !resumed.complete)
        _ = try await Self.request(second, chunk(262_144))
        #expect(try Self.state(try await Self.request(second, chunk(524_288))).complete)
        try await world.expectStatus("one blob held") { status in
            (status["blobs"] as? [String: Any])?["count"] as? Int == 1 && (status["blobs"] as? [String: Any])?["bytes"] as? Int == 600_000
        }

        let bob = try await QueueDevice(world: world, member: Self.bob)
        #expect(try await raw.fetchWholeAndReport(bob) == bytes)
        try await world.expectStatus("the blob deleted after its one fetch") { status in
            (status["blobs"] as? [String: Any])?["count"] as? Int == 0
        }
        let text = try ValiseCLI.run(["status", "--dir", world.path("relay")], program: "valised")
        #expect(text.stdout.contains("blobs:      0 held, 0 bytes"), "\(text.stdout)")
        await second.close()
        await bob.close()
        #expect(world.relay.stop() == 0)
    }
}
