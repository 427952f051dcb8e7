#if Postgres
import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseWire

/// Attachment blobs on two real valised nodes of one relay (issue 20): the blob tables are
/// in the shared database, so an upload cut when its node stops resumes on the other node
/// from what the first committed, and the recipient fetches it from either.
@Suite("High availability: attachment blobs on two valised nodes (real valised)", .serialized,
       .enabled(if: HighAvailabilityWorld.server != nil, "VALISE_TEST_POSTGRES is not set"))
struct HighAvailabilityBlobTests {
    static let alice = "alice@jakarta"
    static let bob = "bob@jakarta"

    @Test("an upload begun on node 1 resumes on node 2 after node 1 stops; the recipient fetches it there and it is deleted")
    func uploadResumesOnTheOtherNode() async throws {
        let ha = try HighAvailabilityWorld(members: [Self.alice, Self.bob])
        let raw = RawBlobUpload(QueueFixture.bytes(600_000))
        let (bytes, upload) = (raw.bytes, raw.upload)
        let chunk = raw.chunk

        let first = try await QueueDevice(world: ha.world, member: Self.alice, port: ha.node1.port)
        #expect(try BlobRelayIntegrationTests.state(try await first.client.request(.blobUpload(upload))).committed == 0)
        #expect(try BlobRelayIntegrationTests.state(try await first.client.request(chunk(0))).committed == 262_144)
        await first.close()
        #expect(ha.node1.stop() == 0)

        let second = try await QueueDevice(world: ha.world, member: Self.alice, port: ha.node2.port)
        let resumed = try BlobRelayIntegrationTests.state(try await second.client.request(.blobUpload(upload)))
        #expect(resumed.committed == 262_144 && !resumed.complete)
        _ = try await second.client.request(chunk(262_144))
        #expect(try BlobRelayIntegrationTests.state(try await second.client.request(chunk(524_288))).complete)
        #expect(try HighAvailabilityWorld.psql(ha.server, database: ha.database, "SELECT count(*) FROM valise.blob WHERE complete")
            .trimmingCharacters(in: .whitespacesAndNewlines) == "1")

        let bob = try await QueueDevice(world: ha.world, member: Self.bob, port: ha.node2.port)
        #expect(try await raw.fetchWholeAndReport(bob) == bytes)
        // Posted without an answer: the deletion is seen in the database within moments.
        var left = ""
        for _ in 0..<100 {
            left = try HighAvailabilityWorld.psql(ha.server, database: ha.database, "SELECT count(*) FROM valise.blob")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if left == "0" { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(left == "0")
        await second.close()
        await bob.close()
    }
}
#endif
