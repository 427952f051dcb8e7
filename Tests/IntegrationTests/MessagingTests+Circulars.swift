import Foundation
import Testing

/// A small circular with real `valise` and `valised` processes: a mission selector, the
/// count it resolved to, `valise sent` as one item, recipients seeing the selector.
extension MessagingTests {
    @Test("a circular to mission:Geneva reaches its 3 members, shows as one item in sent, and each recipient sees the selector")
    func circular() throws {
        let story = try Story(members: ["alice@jakarta", "bob@geneva", "carol@geneva", "dave@geneva", "erin@nairobi"])
        let geneva = ["bob@geneva", "carol@geneva", "dave@geneva"]
        // Everyone publishes their keys first (alice's envelope key carries the receipts).
        for member in ["alice@jakarta"] + geneva { try story.valise(member, ["sync"]) }

        let sent = try story.send("alice@jakarta", to: "mission:Geneva", "routine", "Circular: the consular section closes at noon on Friday.")
        #expect(sent.stdout.contains("Circular to 3 members (mission:Geneva)."), "\(sent.stdout)")
        for member in geneva { #expect(sent.stdout.contains("to \(member): the relay has it"), "\(sent.stdout)") }
        #expect(!sent.stdout.contains("erin@nairobi") && !sent.stdout.contains("to alice@jakarta"))

        // One item in `valise sent`, every message still in its JSON list.
        let list = try story.json("alice@jakarta", ["sent"], connect: false)
        let circulars = try #require(list["circulars"] as? [[String: Any]])
        try #require(circulars.count == 1)
        let circular = circulars[0]
        #expect(circular["selector"] as? String == "mission:Geneva")
        #expect(circular["members"] as? Int == 3)
        #expect((circular["states"] as? [String: Int])?["accepted"] == 3)
        let circularID = try #require(circular["id"] as? String)
        #expect(circularID.count == 32)
        let messages = try #require(list["messages"] as? [[String: Any]])
        #expect(messages.count == 3 && messages.allSatisfy { $0["circular"] as? String == circularID })

        // Bob reads it, and sees it was a circular and to which selector.
        try story.valise("bob@geneva", ["sync"])
        let inbox = try story.inbox("bob@geneva")
        try #require(inbox.count == 1)
        #expect(inbox[0]["circular"] as? String == "mission:Geneva")
        let inboxLines = try story.valise("bob@geneva", ["inbox"], connect: false).stdout
        #expect(inboxLines.contains("Circular to mission:Geneva"), "\(inboxLines)")
        let id = try #require(inbox[0]["id"] as? String)
        let read = try story.valise("bob@geneva", ["read", String(id.prefix(8))], connect: false).stdout
        #expect(read.contains("Circular:   to mission:Geneva"), "\(read)")
        #expect(read.contains("the consular section closes"))

        // Bob's receipt (sent at his next sync) moves one of the three.
        try story.valise("bob@geneva", ["sync"])
        try story.valise("alice@jakarta", ["sync"])
        let table = try story.valise("alice@jakarta", ["sent"], connect: false).stdout
        #expect(table.contains("mission:Geneva (3 members)"), "\(table)")
        #expect(table.contains("accepted 2, delivered 1"), "\(table)")
        #expect(table.split(separator: "\n").count == 2, "a header and one line for the circular: \(table)")
        let detail = try story.valise("alice@jakarta", ["sent", String(circularID.prefix(8))], connect: false).stdout
        #expect(detail.contains("States:     accepted 2, delivered 1"), "\(detail)")
        for member in geneva { #expect(detail.contains(member), "\(detail)") }
        let detailJSON = try story.json("alice@jakarta", ["sent", String(circularID.prefix(8))], connect: false)
        let shown = try #require(detailJSON["circular"] as? [String: Any])
        #expect((shown["messages"] as? [[String: Any]])?.compactMap { $0["to"] as? String }.sorted() == geneva)

        // A selector that matches nobody writes nothing.
        let nobody = try story.send("alice@jakarta", to: "mission:paris", "routine", "Nobody reads this.", expect: 64)
        #expect(nobody.stderr.contains("mission:paris matches no active member"), "\(nobody.stderr)")
        #expect(try story.sent("alice@jakarta").count == 3)
    }
}
