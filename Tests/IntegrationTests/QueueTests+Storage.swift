import Foundation
import Testing
import ValiseClient
import ValiseWire

// A full store: the configured cap (SQLite's max_page_count, from queue.maxStoreBytes) and a
// file system that is really full (a small tmpfs, when this test may mount one). Either way
// the relay refuses new envelopes with STORAGE_FULL, keeps running, and still delivers
// every envelope it accepted (the issue's "Crash safety": "keep serving the ones it holds").
extension QueueTests {
    struct Filled {
        var accepted: [Data] = []
        var refusal: ClientError?
        var unexpected: [String] = []
    }

    /// Sends `size`-byte envelopes to bob until the relay answers STORAGE_FULL (at most
    /// `bound` sends), then once more to see that it stays full.
    static func fill(_ sender: QueueDevice, size: Int, bound: Int) async -> Filled {
        var filled = Filled()
        for _ in 0..<bound {
            let id = QueueFixture.id()
            let outcome = await sender.send(id, to: Self.bob, envelope: QueueFixture.bytes(size))
            if outcome.accepted?.duplicate == false {
                filled.accepted.append(Data(id))
            } else if outcome.isRefused(.storageFull) {
                filled.refusal = outcome.refusal
                let again = await sender.send(QueueFixture.id(), to: Self.bob, envelope: QueueFixture.bytes(size))
                if !again.isRefused(.storageFull) { filled.unexpected.append("after STORAGE_FULL: \(again)") }
                break
            } else {
                filled.unexpected.append("\(outcome)")
            }
        }
        return filled
    }

    /// What every full store must show: a clear refusal, a running relay, every accepted
    /// envelope delivered exactly once.
    static func expectFullButServing(
        _ world: RelayWorld, _ filled: Filled, bob: QueueDevice, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        #expect(filled.unexpected.isEmpty, "other answers while filling: \(filled.unexpected)", sourceLocation: sourceLocation)
        #expect(filled.accepted.count >= 3, "the store took only \(filled.accepted.count) envelopes before it was full", sourceLocation: sourceLocation)
        let refusal = try #require(filled.refusal, "the relay never answered STORAGE_FULL (\(filled.accepted.count) accepted)", sourceLocation: sourceLocation)
        #expect(refusal.message.contains("storage is full"), "a clear message: \(refusal.message)", sourceLocation: sourceLocation)
        #expect(world.relay.isRunning, "the relay stopped when its store filled:\n\(world.relay.log)", sourceLocation: sourceLocation)
        try world.expectHealthy(sourceLocation: sourceLocation)

        try await bob.fetch()
        let delivered = await bob.deliveries(exactly: filled.accepted.count, within: 20)
        #expect(delivered.map(\.id) == filled.accepted, "every accepted envelope is delivered once, in order (\(delivered.count) of \(filled.accepted.count))", sourceLocation: sourceLocation)
        #expect(delivered.allSatisfy { $0.envelope.count == delivered.first?.envelope.count }, sourceLocation: sourceLocation)
    }

    // MARK: 10. Storage full

    @Test("storage full (queue.maxStoreBytes): STORAGE_FULL with a clear message, the relay keeps running and delivers what it accepted")
    func storageFullConfigured() async throws {
        let world = try RelayWorld(members: Self.pair, relayEnvironment: ["VALISED_QUEUE_MAX_STORE_BYTES": "\(1 << 20)"])
        let alice = try await QueueDevice(world: world, member: Self.alice)
        // 32 KiB envelopes: a 1 MiB store holds a few dozen at most.
        let filled = await Self.fill(alice, size: 32 * 1024, bound: 100)
        #expect(filled.accepted.count < 32, "a 1 MiB cap held \(filled.accepted.count) envelopes of 32 KiB")
        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await Self.expectFullButServing(world, filled, bob: bob)
        // The operator is told once, not once per refusal, and the refusals are counted.
        #expect(world.relayLogLines(containing: "storage full:").count == 1, "the full store was not logged once:\n\(world.relay.log)")
        try await world.expectStatus("the refusals were not counted while full") { AbuseLimitTests.limitCount($0, "storageFull") == 2 }

        // An ack deletes the envelope, and the pages it freed take new envelopes.
        try await bob.ack(filled.accepted)
        try await world.expectStatus("the acks were not recorded in a full store") { $0["envelopes"] as? Int == 0 }
        #expect(try world.remembered("delivered") == filled.accepted.count)
        await bob.close()
        let laterID = QueueFixture.id()
        let later = await alice.send(laterID, to: Self.bob, envelope: QueueFixture.bytes(32 * 1024))
        #expect(later.accepted != nil, "the acks freed room in the store, yet: \(later)")
        let again = try await QueueDevice(world: world, member: Self.bob)
        try await again.fetch()
        #expect(await again.deliveries(exactly: later.accepted == nil ? 0 : 1).map(\.id) == (later.accepted == nil ? [] : [Data(laterID)]),
                "no acked envelope comes back; the later one, if accepted, comes once")
        #expect(world.relay.isRunning)
        #expect(world.relayLogLines(containing: "storage has room again").count == (later.accepted == nil ? 0 : 1),
                "the recovery was not logged once:\n\(world.relay.log)")
        #expect(world.relayLogLines(containing: "storage full:").count == 1)
        await alice.close()
        await again.close()
    }

    @Test("storage full (a 24 MiB tmpfs under the relay's directory): STORAGE_FULL, the relay keeps running and delivers what it accepted")
    func storageFullFileSystem() async throws {
        let world = try RelayWorld(members: Self.pair)
        let mountPoint = world.path("tmpfs")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        let mount = try SystemTool.run("/bin/mount", ["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", mountPoint])
        guard mount.status == 0 else {
            // Not root, or no CAP_SYS_ADMIN in this container: the configured cap above still ran.
            Issue.record("the tmpfs case did not run: mount -t tmpfs failed (status \(mount.status)): \(mount.stderr)", severity: .warning)
            return
        }
        defer {
            if world.relay.isRunning { _ = world.relay.stop() }
            let unmount = try? SystemTool.run("/bin/umount", [mountPoint])
            if unmount?.status != 0 { Issue.record("umount \(mountPoint) failed: \(unmount?.stderr ?? "")") }
        }
        // The same relay (same keys and directory) moved onto the small file system.
        #expect(world.relay.stop() == 0)
        let relayDirectory = mountPoint + "/relay"
        // The relay allocates its 8 MiB space reserve again on the tmpfs.
        try FileManager.default.removeItem(atPath: world.path("relay") + "/queue.sqlite-reserve")
        let copy = try SystemTool.run("/bin/cp", ["-a", world.path("relay"), relayDirectory])
        try #require(copy.status == 0, "cp: \(copy.stderr)")
        world.relay = try RelayProcess(
            directory: relayDirectory, logPath: world.path("relay-tmpfs.log"),
            environment: ["VALISED_LIMITS_DELIVERY_WINDOW": "1000"])

        let alice = try await QueueDevice(world: world, member: Self.alice)
        // 128 KiB envelopes: the 16 MiB beside the reserve hold about a hundred; 250 are
        // more than the disk.
        let filled = await Self.fill(alice, size: 128 * 1024, bound: 250)
        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await Self.expectFullButServing(world, filled, bob: bob)
        // While the disk is still full: one warning, and the refusals in `valised status`
        // (its file is beside the queue, on the same full disk).
        #expect(world.relayLogLines(containing: "storage full:").count == 1, "the full disk was not logged once:\n\(world.relay.log)")
        try await world.expectStatus("the refusals were not counted on the full disk", directory: relayDirectory) {
            AbuseLimitTests.limitCount($0, "storageFull") == 2
        }

        // Deleting needs a little room on the disk too: the relay gives back its space
        // reserve so that the acks go through, and once they have freed pages, new
        // envelopes are taken again.
        try await bob.ack(filled.accepted)
        try await world.expectStatus("the acks were not recorded on a full disk", directory: relayDirectory) { $0["envelopes"] as? Int == 0 }
        #expect(!world.relay.log.contains("could not record acknowledgements"), "an ack failed on the full disk:\n\(world.relay.log)")
        var later: [String] = []
        for _ in 0..<20 {
            let outcome = await alice.send(QueueFixture.id(), to: Self.bob, envelope: QueueFixture.bytes(1000))
            later.append("\(outcome)")
            if outcome.accepted != nil { break }
            #expect(outcome.isRefused(.storageFull), "while the reserve is rebuilt: \(outcome)")
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(later.last?.contains("accepted") == true, "no send accepted once the queue was drained: \(later)")
        #expect(FileManager.default.fileExists(atPath: relayDirectory + "/queue.sqlite-reserve"), "the space reserve was not rebuilt")
        #expect(world.relayLogLines(containing: "storage has room again").count == 1, "the recovery was not logged once:\n\(world.relay.log)")
        #expect(world.relayLogLines(containing: "storage full:").count == 1, "the full disk was logged again:\n\(world.relay.log)")
        await alice.close()
        await bob.close()
    }
}
