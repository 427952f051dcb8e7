import Foundation
import GRDB
import Testing

// One-time prekeys are spent only to start a session: a reply in an existing session (and
// the delivery receipt before it) needs only the correspondent's current envelope key.
extension MessagingTests {
    /// How many one-time prekeys the relay holds for `member`, read from its store.
    static func oneTimePrekeysOnRelay(_ world: RelayWorld, _ member: String) throws -> Int {
        try count(world, "SELECT COUNT(*) FROM one_time_prekey WHERE mailbox = ?", member)
    }

    /// How many one-time KEM prekeys, and last-resort ones, the relay holds for `member`.
    static func kemPrekeysOnRelay(_ world: RelayWorld, _ member: String) throws -> (oneTime: Int, lastResort: Int) {
        (try count(world, "SELECT COUNT(*) FROM kem_prekey WHERE mailbox = ? AND last_resort = 0", member),
         try count(world, "SELECT COUNT(*) FROM kem_prekey WHERE mailbox = ? AND last_resort = 1", member))
    }

    private static func count(_ world: RelayWorld, _ sql: String, _ member: String) throws -> Int {
        try count(queue: world.path("relay/queue.sqlite"), sql, member)
    }

    /// Prekey rows of every kind (signed, one-time X25519, KEM) that the relay store at
    /// `queue` holds for `member`.
    static func prekeyRows(queue: String, _ member: String) throws -> Int {
        try ["prekey", "one_time_prekey", "kem_prekey"].reduce(0) { total, table in
            total + (try count(queue: queue, "SELECT COUNT(*) FROM \(table) WHERE mailbox = ?", member))
        }
    }

    private static func count(queue path: String, _ sql: String, _ member: String) throws -> Int {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in try Int.fetchOne(db, sql: sql, arguments: [member]) ?? -1 }
    }

    @Test("a reply in an existing session, and its receipts, spend none of the other side's one-time prekeys; starting the session spends one")
    func replySpendsNoOneTimePrekey() throws {
        let story = try Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        #expect(try story.json(bob, ["sync"])["oneTimeKEMPrekeysOnRelay"] as? Int == 100)
        try story.valise(alice, ["sync"])
        let (aliceHeld, bobHeld) = (try Self.oneTimePrekeysOnRelay(story.world, alice), try Self.oneTimePrekeysOnRelay(story.world, bob))
        #expect(aliceHeld > 0 && bobHeld > 0, "alice \(aliceHeld), bob \(bobHeld)")
        let bobKEM = try Self.kemPrekeysOnRelay(story.world, bob)
        #expect(bobKEM.oneTime == 100 && bobKEM.lastResort == 1, "a sync tops up the one-time KEM prekeys and publishes a last-resort one: \(bobKEM)")

        try story.send(alice, to: bob, "routine", "the session starts here")
        #expect(try Self.oneTimePrekeysOnRelay(story.world, bob) == bobHeld - 1, "alice's first message starts a session with one of bob's")
        #expect(try Self.kemPrekeysOnRelay(story.world, bob) == (bobKEM.oneTime - 1, 1), "and with one of bob's one-time KEM prekeys")

        // Bob reads (his receipt goes at the end of the sync) and replies in alice's session.
        #expect(try story.json(bob, ["sync"])["received"] as? Int == 1)
        try story.send(bob, to: alice, "routine", "a reply in the same session")
        let left = try Self.oneTimePrekeysOnRelay(story.world, alice)
        #expect(left == aliceHeld, "bob's receipt and reply spent \(aliceHeld - left) of alice's one-time prekeys")
        #expect(try story.json(alice, ["sync"])["received"] as? Int == 1)
        #expect(try story.inbox(alice).first?["from"] as? String == bob)
    }
}
