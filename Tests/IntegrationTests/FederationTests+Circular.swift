import Foundation
import Testing
import ValiseCrypto
import ValiseTestSupport

/// The commands end to end across relays, with the real `valise` and `valised`: a
/// circular to a mission homed at another relay, with a file attached.
@Suite("Relay links: a circular with an attachment (real valise and valised)", .serialized)
struct FederationCircularTests {
    @Test("alice at jakarta sends mission:geneva a file: uploaded once, carried once to geneva, fetched by bob and carol, saved byte for byte, then deleted at both relays")
    func circularWithAnnexAcrossRelays() throws {
        let world = try FederationWorld(members: ["alice@jakarta", "bob@geneva", "carol@geneva"])
        for member in world.members { try world.member(member, ["sync"]) }
        let file = Random.bytes(count: 700_000)
        let path = world.path("annex.pdf")
        try Data(file).write(to: URL(fileURLWithPath: path))

        let sent = try world.member("alice@jakarta", ["send", "--to", "mission:geneva", "--attach", path, "The annex for the mission."])
        #expect(sent.stdout.contains("Circular to 2 members (mission:geneva)."), "\(sent.stdout)")

        for member in ["bob@geneva", "carol@geneva"] {
            let inbox = try world.syncUntil(member, seconds: 90) { $0.count == 1 }
            let message = try #require(inbox.first)
            #expect(message["circular"] as? String == "mission:geneva")
            let id = try #require(message["id"] as? String)
            let read = try world.json(world.valise(["read", String(id.prefix(8)), "--json", "--home", world.path(member)]))
            let attachments = read["attachments"] as? [[String: Any]] ?? []
            #expect(attachments.count == 1 && attachments.first?["name"] as? String == "annex.pdf" && attachments.first?["state"] as? String == "stored",
                    "\(attachments)")
            let out = world.path("saved-\(member)")
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
            try world.valise(["save", String(id.prefix(8)), "--out", out, "--home", world.path(member)])
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/annex.pdf"))) == file)
        }
        // Both fetches reported: geneva let the blob go; jakarta did once geneva had it.
        let deleted = world.wait(seconds: 60) {
            let blobs = ["jakarta", "geneva"].map { (try? world.status($0)["blobs"] as? [String: Any])??["count"] as? Int }
            return blobs.allSatisfy { $0 == 0 }
        }
        #expect(deleted, "the relays still hold the blob after both recipients fetched it")
        let messages = try world.sent("alice@jakarta")
        #expect(messages.count == 2 && messages.allSatisfy { $0["circular"] as? String != nil }, "\(messages)")
    }
}
