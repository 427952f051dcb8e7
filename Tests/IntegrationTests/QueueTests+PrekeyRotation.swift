import Foundation
import GRDB
import Testing
import ValiseClient
import ValiseCrypto
import ValiseSession
import ValiseWire

// A rotation takes the member's prekeys off the relay (every kind), before the publish is
// answered and, after a crash between the two, before the relay serves again.
extension QueueTests {
    /// Rotates `member`'s keys (`valise keys rotate`, `valise admin rotate`) and publishes.
    func rotate(_ world: RelayWorld, _ member: String) throws {
        let rotation = try world.json(world.valise(["keys", "rotate", "--home", world.path(member), "--json"]))
        let fingerprint = try #require(rotation["newFingerprint"] as? String)
        try world.valise(["admin", "rotate", member, world.path("\(member)/rotation.request"), "--expect-fingerprint", fingerprint] + world.org)
        try world.valise(["admin", "publish", "--relay", "hq", "--relay-address", world.relay.address] + world.org)
    }

    /// Replaces `member`'s stored signed prekey (the relay stopped) with one `identity` signed.
    static func storeSignedPrekey(_ world: RelayWorld, _ member: String, signedBy identity: SigningKey) throws {
        let prekey = AgreementPrivateKey().publicKey
        let queue = try DatabaseQueue(path: world.path("relay/queue.sqlite"))
        defer { try? queue.close() }
        try queue.write { db in
            try db.execute(
                sql: "UPDATE prekey SET signed_prekey = ?, signed_prekey_signature = ? WHERE mailbox = ?",
                arguments: [Data(prekey.bytes), Data(PQXDH.signPrekey(prekey, with: identity).bytes), member])
            #expect(db.changesCount == 1)
        }
    }

    func expectNoPrekeys(_ device: QueueDevice, _ member: String, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            let bundle = try await fetchBundle(device, member)
            Issue.record("a bundle after the rotation: \(bundle)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == "relay-\(WireErrorCode.noPrekeys)", "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("prekeys: a published rotation deletes the member's prekeys of every kind before the admin hears; queued mail stays; the new device's upload is handed out")
    func rotationDeletesPrekeys() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob, Self.carol])
        for member in [Self.alice, Self.bob] { _ = try world.sync(member) }
        let oldIdentity = try world.identityKey(Self.bob)
        try world.valise(["send", "--to", Self.bob, "before the rotation", "--home", world.path(Self.alice), "--relay", world.relay.address])
        let carol = try await QueueDevice(world: world, member: Self.carol)
        #expect(try await fetchBundle(carol, Self.bob).identityKey == Data(oldIdentity.publicKey.bytes))
        let aliceHeld = try MessagingTests.oneTimePrekeysOnRelay(world, Self.alice)

        try rotate(world, Self.bob)
        await expectNoPrekeys(carol, Self.bob)
        #expect(try MessagingTests.oneTimePrekeysOnRelay(world, Self.bob) == 0)
        #expect(try MessagingTests.kemPrekeysOnRelay(world, Self.bob) == (0, 0))
        #expect(try MessagingTests.oneTimePrekeysOnRelay(world, Self.alice) == aliceHeld, "other members keep theirs")

        // Bob's device completes the rotation, uploads new prekeys, and reads the mail sealed
        // to its old envelope key.
        #expect(try world.json(world.sync(Self.bob))["received"] as? Int == 1)
        let newIdentity = try world.identityKey(Self.bob).publicKey
        #expect(newIdentity != oldIdentity.publicKey)
        let bundle = try await fetchBundle(carol, Self.bob)
        #expect(bundle.identityKey == Data(newIdentity.bytes))
        #expect(newIdentity.isValidSignature(
            try Signature(bytes: Array(bundle.signedPrekeySignature)), for: Array(bundle.signedPrekey), purpose: PQXDH.signedPrekeyPurpose))
        let kem = PQXDH.KEMPrekey(
            key: try MLKEM1024PublicKey(bytes: Array(bundle.kemPrekey.key)), kind: bundle.kemPrekeyLastResort ? .lastResort : .oneTime,
            signature: try Signature(bytes: Array(bundle.kemPrekey.signature)))
        #expect(kem.isValid(for: newIdentity))
        await carol.close()
    }

    @Test("prekeys: after a crash between a rotation's publish and the deletion, the restarted relay deletes the prekeys the old key signed before serving, and no others")
    func staleAfterCrash() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob, Self.carol])
        for member in [Self.alice, Self.bob] { _ = try world.sync(member) }
        let oldIdentity = try world.identityKey(Self.bob)
        try rotate(world, Self.bob)
        _ = try world.sync(Self.bob)
        let (aliceHeld, bobHeld) = (try MessagingTests.oneTimePrekeysOnRelay(world, Self.alice), try MessagingTests.oneTimePrekeysOnRelay(world, Self.bob))
        #expect(aliceHeld > 0 && bobHeld > 0)

        // What a crash leaves: bob's prekeys signed by his old identity key.
        #expect(world.relay.stop() == 0)
        try Self.storeSignedPrekey(world, Self.bob, signedBy: oldIdentity)
        world.relay = try RelayProcess(directory: world.path("relay"), logPath: world.path("relay-restarted.log"))
        #expect(world.relay.log.contains("deleted prekeys that rotated identity keys signed"), "\(world.relay.log)")

        let carol = try await QueueDevice(world: world, member: Self.carol)
        await expectNoPrekeys(carol, Self.bob)
        #expect(try MessagingTests.oneTimePrekeysOnRelay(world, Self.bob) == 0)
        #expect(try MessagingTests.oneTimePrekeysOnRelay(world, Self.alice) == aliceHeld)
        let aliceIdentity = Data(try world.identityKey(Self.alice).publicKey.bytes)
        #expect(try await fetchBundle(carol, Self.alice).identityKey == aliceIdentity)
        await carol.close()
    }
}
