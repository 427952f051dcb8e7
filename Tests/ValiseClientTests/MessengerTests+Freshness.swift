import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseStore

extension MessengerTests {
    /// Alice's device with a checkpoint signed at `world.now`, judged `age` seconds later.
    private func aliceJudging(_ world: MessagingWorld, checkpointAge age: UInt64) throws -> Messenger {
        let checkpointKey = SigningKey()
        world.certifyCheckpointKey(checkpointKey)
        let head = try #require(world.entries.last)
        let checkpoint = Checkpoint(sequence: head.sequence, headHash: head.hash, time: world.now, signingKey: checkpointKey)
        let pinned = PinnedOrganisation(home: world.alice.home)
        _ = try pinned.pin(OrganisationBundle(entries: world.entries, checkpoint: checkpoint), expectedGenesis: nil, now: world.now, file: "test bundle")
        world.alice.messenger.close()
        return try Messenger(home: world.alice.home, identity: world.alice.identity, directory: try pinned.load(now: world.now + age), receiptDelay: 0...0)
    }

    @Test("past the organisation's hard freshness bound, ordinary messages are refused before anything is written and FLASH still goes")
    func staleDirectory() throws {
        let world = try MessagingWorld()
        let policy = FreshnessPolicy.standard
        let alice = try aliceJudging(world, checkpointAge: UInt64(policy.refuseAfterSeconds) + 3600)
        let now = world.now + UInt64(policy.refuseAfterSeconds) + 3600
        for precedence in [Precedence.routine, .priority, .immediate] {
            #expect(throws: ClientError.self) { try alice.compose("stale", to: [world.bob.name], precedence: precedence, ttl: .day, now: now) }
            do {
                _ = try alice.compose("stale", to: [world.bob.name], precedence: precedence, ttl: .day, now: now)
            } catch {
                #expect(error.code == "directory-stale", "\(error)")
            }
        }
        #expect(try alice.sent().isEmpty, "a refused message was written to the outbox")
        let flash = try alice.compose("evacuate", to: [world.bob.name], precedence: .flash, ttl: .hour, now: now)
        #expect(flash.count == 1)
        #expect(try alice.sent().map(\.precedenceName) == ["FLASH"])
        #expect(DirectoryFreshness(alice.directory, now: now).warning != nil)
    }

    @Test("between the warning and the hard bound, messages go and the directory is flagged")
    func warnedDirectory() throws {
        let world = try MessagingWorld()
        let policy = FreshnessPolicy.standard
        let age = UInt64(policy.warnAfterSeconds) + 3600
        let alice = try aliceJudging(world, checkpointAge: age)
        let freshness = DirectoryFreshness(alice.directory, now: world.now + age)
        #expect(freshness.warns && !freshness.refusesOrdinarySends)
        #expect(try alice.compose("routine", to: [world.bob.name], precedence: .routine, ttl: .day, now: world.now + age).count == 1)
    }
}
