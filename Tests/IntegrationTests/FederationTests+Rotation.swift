import Foundation
import Testing

extension FederationTests {
    @Test("a rotation published at hq reaches bob's home relay, geneva, which deletes the prekeys his old key signed; once his device syncs, alice's first contact through jakarta starts on his new keys")
    func rotationSpreads() throws {
        let world = try FederationWorld()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try world.member(bob, ["sync"])
        try world.member(alice, ["sync"])
        let genevaQueue = world.path("geneva/queue.sqlite")
        #expect(try MessagingTests.prekeyRows(queue: genevaQueue, bob) > 0)

        let rotation = try world.json(world.valise(["keys", "rotate", "--home", world.path(bob), "--json"]))
        let fingerprint = try #require(rotation["newFingerprint"] as? String)
        try world.valise(["admin", "rotate", bob, world.path("\(bob)/rotation.request"), "--expect-fingerprint", fingerprint] + world.org)
        let before = try world.directoryCount("geneva")
        try world.valise(["admin", "publish", "--relay", "hq", "--relay-address", world.address("hq")] + world.org)
        try world.waitForDirectory(count: before + 1)
        // Geneva stores the entries from its link, then deletes (bounded wait for the second).
        #expect(try world.wait { try MessagingTests.prekeyRows(queue: genevaQueue, bob) == 0 }, "geneva kept bob's old prekeys")

        try world.member(bob, ["sync"])
        let sent = try world.member(alice, ["send", "--to", bob, "after the rotation"])
        #expect(!sent.stderr.contains("not signed by their identity key"), "\(sent.stderr)")
        let inbox = try world.syncUntil(bob) { $0.count == 1 }
        #expect(inbox.first?["from"] as? String == alice)
    }
}
