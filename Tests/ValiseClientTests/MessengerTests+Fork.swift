import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseSession

/// "DIRECTORY FORK" only on proof: two validly signed statements for one sequence.
extension MessengerTests {
    @Test("a forged directory head from someone who is not the sender raises no alarm and keeps no evidence")
    func forgedHeadIsNoAlarm() throws {
        let world = try MessagingWorld()
        let (alice, bob, carol) = (world.alice, world.bob, world.carol)
        let forked = SealedEnvelope.DirectoryHead(sequence: 1, hash: Random.bytes(count: 32))
        // Carol seals her own session message under alice's name with a forked head; the
        // relay (which holds every envelope key) seals junk under alice's name.
        let carols = try world.send("from carol", from: carol, to: bob)[0]
        let contents = try world.open(carols, as: bob)
        let byCarol = try world.reseal(contents, to: bob, like: carols, sender: alice.publicKey, head: forked)
        let byRelay = try world.reseal(contents, to: bob, like: carols, sender: alice.publicKey, head: forked) { message in
            message = Random.bytes(count: message.count)
        }
        for forgery in [byCarol, byRelay] {
            let outcome = try world.deliver(forgery)
            #expect(outcome.refusalCode != nil)
            #expect(outcome.refusalCode != "directory-fork", "\(outcome)")
            #expect(!outcome.text.contains("FORK"), "\(outcome)")
        }
        #expect(bob.forkEvidence().isEmpty)
        #expect(try bob.messenger.inbox(unreadOnly: false).isEmpty)
        _ = alice
    }

    @Test("an unproven head mismatch from the authenticated sender keeps the message readable, with a quiet note and no alarm")
    func unprovenMismatchIsAQuietNote() throws {
        let world = try MessagingWorld()
        let (alice, bob) = (world.alice, world.bob)
        let envelope = try world.send("hello bob", from: alice, to: bob)[0]
        let contents = try world.open(envelope, as: bob)
        // Alice's own session message (it authenticates her), with another head at entry 1
        // and nothing signed to back it: delivered instead of the original.
        let mismatch = try world.reseal(
            contents, to: bob, like: envelope, id: envelope.id, head: .init(sequence: 1, hash: Random.bytes(count: 32)))
        let outcome = try world.deliver(mismatch)
        #expect(outcome.refusalCode == nil, "\(outcome)")
        #expect(outcome.message?.text == "hello bob")
        #expect(outcome.directoryNote == "the sender's directory head differs, unverified")
        #expect(!outcome.text.contains("FORK"))
        #expect(bob.forkEvidence().isEmpty)
        #expect(try bob.messenger.inbox(unreadOnly: false).map(\.text) == ["hello bob"])
    }

    @Test("two conflicting signed statements for one sequence raise DIRECTORY FORK and keep the evidence")
    func provenForkRaisesTheAlarm() throws {
        let world = try MessagingWorld()
        let (alice, bob) = (world.alice, world.bob)
        let checkpointKey = SigningKey()
        world.certifyCheckpointKey(checkpointKey)
        // Entry 5 differs between alice's log and bob's: both are signed by the admin (an
        // admin, or a relay holding entries back, shows different logs to different people).
        let shownToAlice = world.nextEntry(.revoke(Revocation(target: .member(world.carol.name), reason: "left the service")))
        let shownToBob = world.nextEntry(.revoke(Revocation(target: .member(world.carol.name), reason: "transferred")))
        let aliceCheckpoint = Checkpoint(sequence: shownToAlice.sequence, headHash: shownToAlice.hash, time: world.now, signingKey: checkpointKey)
        try alice.open(world.entries + [shownToAlice], checkpoint: aliceCheckpoint, now: world.now)
        try bob.open(world.entries + [shownToBob], now: world.now)

        let outcome = try world.deliver(try world.send("are you there?", from: alice, to: bob)[0])
        // The message is authentic (its session proves alice wrote it): it stays readable.
        #expect(outcome.message?.text == "are you there?", "\(outcome)")
        let alarm = try #require(outcome.directoryNote)
        #expect(alarm.contains("DIRECTORY FORK"))
        let evidence = try #require(bob.forkEvidence().first)
        #expect(alarm.contains(evidence))
        #expect(evidence.hasPrefix(bob.forkEvidencePath + "/\(shownToBob.sequence)-"))
        var info = stat()
        #expect(stat(evidence, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: evidence)))
        #expect(bytes.starts(with: Array("VALISEFE".utf8)))
        // Both statements are in the file, as they were signed.
        #expect(bytes.firstRange(of: shownToBob.encoded()) != nil)
        #expect(bytes.firstRange(of: aliceCheckpoint.encoded()) != nil)
        let decoded = try ForkEvidence(fileBytes: bytes)
        #expect(decoded.sequence == shownToBob.sequence)
        #expect(decoded.statements == [.entry(shownToBob), .checkpoint(aliceCheckpoint)])
    }
}
