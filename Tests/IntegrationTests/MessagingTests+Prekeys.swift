import Foundation
import GRDB
import Testing

// One-time prekeys are spent only to start a session: a reply in an existing session (and
// the delivery receipt before it) needs only the correspondent's current envelope key.
extension MessagingTests {
    /// How many one-time prekeys the relay holds for `member`, read from its store.
    static func oneTimePrekeysOnRelay(_ world: RelayWorld, _ member: String) throws -> Int {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: world.path("relay/queue.sqlite"), configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM one_time_prekey WHERE mailbox = ?", arguments: [member]) ?? -1
        }
    }

    @Test("a reply in an existing session, and its receipts, spend none of the other side's one-time prekeys; starting the session spends one")
    func replySpendsNoOneTimePrekey() throws {
        let story = try Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try story.valise(bob, ["sync"])
        try story.valise(alice, ["sync"])
        let (aliceHeld, bobHeld) = (try Self.oneTimePrekeysOnRelay(story.world, alice), try Self.oneTimePrekeysOnRelay(story.world, bob))
        #expect(aliceHeld > 0 && bobHeld > 0, "alice \(aliceHeld), bob \(bobHeld)")

        try story.send(alice, to: bob, "routine", "the session starts here")
        #expect(try Self.oneTimePrekeysOnRelay(story.world, bob) == bobHeld - 1, "alice's first message starts a session with one of bob's")

        // Bob reads (his receipt goes at the end of the sync) and replies in alice's session.
        #expect(try story.json(bob, ["sync"])["received"] as? Int == 1)
        try story.send(bob, to: alice, "routine", "a reply in the same session")
        let left = try Self.oneTimePrekeysOnRelay(story.world, alice)
        #expect(left == aliceHeld, "bob's receipt and reply spent \(aliceHeld - left) of alice's one-time prekeys")
        #expect(try story.json(alice, ["sync"])["received"] as? Int == 1)
        #expect(try story.inbox(alice).first?["from"] as? String == bob)
    }
}
