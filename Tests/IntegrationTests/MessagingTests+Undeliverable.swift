import Foundation
import Testing

extension MessagingTests {
    @Test("a message accepted for carol, then carol revoked before she takes it: alice's sent shows 'undeliverable (recipient revoked)' from the relay's signed status")
    func undeliverableRecipientRevoked() throws {
        let story = try Story()
        let (alice, carol) = ("alice@jakarta", "carol@geneva")
        try story.valise(carol, ["sync"])
        try story.valise(alice, ["sync"])
        // Carol is offline: the relay holds the message for her.
        try story.send(alice, to: carol, "priority", "the visa list, for your eyes")
        #expect(try story.sent(alice).map { $0["state"] as? String } == ["accepted"])

        // An admin revokes carol: the relay purges her mailbox.
        try story.world.revoke(carol)
        let report = try story.valise(alice, ["sync"])
        #expect(report.stdout.contains("undeliverable: the recipient was revoked"), "\(report.stdout)")

        let sent = try story.sent(alice)
        #expect(sent.map { $0["state"] as? String } == ["undeliverable (recipient revoked)"], "\(sent)")
        #expect(sent.first?["reason"] as? String == "recipient-revoked", "\(sent)")
        let table = try story.valise(alice, ["sent"], connect: false).stdout
        #expect(table.contains("undeliverable (recipient revoked)"), "\(table)")
        // Said once: the next sync asks nothing more about it.
        let again = try story.valise(alice, ["sync"])
        #expect(!again.stdout.contains("undeliverable"), "\(again.stdout)")
    }
}
