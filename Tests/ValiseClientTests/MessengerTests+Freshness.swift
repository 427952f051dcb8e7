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

extension MessengerTests {
    /// A relay record for the test organisation.
    private func relay(_ name: String) -> RelayRecord {
        RelayPublicFile(noiseKey: AgreementPrivateKey().publicKey, signingKey: SigningKey()).record(name: name, address: "\(name).example:7400")
    }

    @Test("a mission cut off from headquarters: past the hard bound, ordinary messages to members homed at the sender's relay go, the others wait in the outbox until a fresh checkpoint arrives; FLASH goes to everyone")
    func cutOffMission() throws {
        let world = try MessagingWorld()
        // Alice and Carol are homed at the mission's relay (the default: listed first), Bob at hq.
        world.append(.addRelay(relay("mission")))
        world.append(.addRelay(relay("hq")))
        world.append(.move(member: world.bob.name, home: "hq"))
        let checkpointKey = SigningKey()
        world.certifyCheckpointKey(checkpointKey)
        let head = try #require(world.entries.last)
        let old = Checkpoint(sequence: head.sequence, headHash: head.hash, time: world.now, signingKey: checkpointKey)
        for device in world.devices { try device.open(world.entries, checkpoint: old, now: world.now) }
        let alice = world.alice.messenger!
        world.now += UInt64(FreshnessPolicy.standard.refuseAfterSeconds) + 3600
        #expect(DirectoryFreshness(alice.directory, now: world.now).refusesOrdinarySends)

        // Nothing is refused: the message to Bob is written, and waits.
        let toCarol = try alice.compose("same building", to: [world.carol.name], precedence: .routine, ttl: .day, now: world.now)
        let toBob = try alice.compose("headquarters", to: [world.bob.name], precedence: .immediate, ttl: .day, now: world.now)
        let flash = try alice.compose("evacuate", to: [world.bob.name], precedence: .flash, ttl: .hour, now: world.now)
        #expect(!toCarol[0].waitsForCheckpoint && toBob[0].waitsForCheckpoint && !flash[0].waitsForCheckpoint)
        let carried = try world.flush(world.alice).filter { $0.kind == .message }
        #expect(Set(carried.map(\.id)) == Set([toCarol[0].id, flash[0].id]), "only Carol's and the FLASH went")
        #expect(try alice.waitingForCheckpoint(now: world.now) == 1)
        #expect(try alice.unsealed(now: world.now).isEmpty, "the waiting message is not even sealed")
        #expect(try world.deliver(try #require(carried.first { $0.to == "carol@geneva" })).message?.text == "same building")

        // A fresh checkpoint arrives: it goes.
        let fresh = Checkpoint(sequence: head.sequence, headHash: head.hash, time: world.now, signingKey: checkpointKey)
        try world.alice.open(world.entries, checkpoint: fresh, now: world.now)
        #expect(try world.alice.messenger.waitingForCheckpoint(now: world.now) == 0)
        let later = try world.flush(world.alice).filter { $0.kind == .message }
        #expect(later.map(\.id) == [toBob[0].id])
        #expect(try world.deliver(later[0]).message?.text == "headquarters")
    }
}
