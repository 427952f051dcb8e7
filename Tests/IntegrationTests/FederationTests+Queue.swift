import Foundation
import Testing

extension FederationTests {
    @Test("envelopes in a forwarding queue: a held one stays at jakarta when geneva is back, released it goes; a deleted one reads undeliverable (deleted by the operator) in alice's sent")
    func operatorHoldsForwarded() throws {
        let world = try FederationWorld()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try world.converse(alice, bob)
        world.stopRelay("geneva")
        try world.member(alice, ["send", "--to", bob, "--precedence", "routine", "to hold"])
        try world.member(alice, ["send", "--to", bob, "--precedence", "routine", "to delete"])
        #expect(try world.backlog(at: "jakarta", for: "geneva") == 2)

        let list = try world.run(["queue", "list", "--dir", world.path("jakarta"), "--mailbox", bob, "--json"], program: "valised")
        let envelopes = try #require(try world.json(list)["envelopes"] as? [[String: Any]], "\(list.stderr)")
        #expect(envelopes.count == 2 && envelopes.allSatisfy { $0["destination"] as? String == "geneva" }, "\(envelopes)")
        let ids = envelopes.compactMap { $0["id"] as? String }
        let (held, deleted) = (try #require(ids.first), try #require(ids.last))
        let hold = try world.run(["queue", "hold", held, "--dir", world.path("jakarta")], program: "valised")
        let delete = try world.run(["queue", "delete", deleted, "--dir", world.path("jakarta")], program: "valised")
        #expect(hold.status == 0 && delete.status == 0, "\(hold.stderr) \(delete.stderr)")

        try world.startRelay("geneva")
        try world.waitForLinks()
        // The link is up: a held envelope still waits (a short look: it would go at once).
        #expect(try !world.wait(seconds: 2) { try world.backlog(at: "jakarta", for: "geneva") == 0 }, "the held envelope was forwarded")
        let release = try world.run(["queue", "release", held, "--dir", world.path("jakarta")], program: "valised")
        #expect(release.status == 0, "\(release.stderr)")
        #expect(try world.wait(seconds: 10) { try world.backlog(at: "jakarta", for: "geneva") == 0 }, "released: forwarded to geneva")
        try world.syncUntil(bob) { $0.count == 2 }

        var states: [String] = []
        try world.wait {
            try world.member(alice, ["sync"])
            states = try world.sent(alice).map { $0["state"] as? String ?? "" }
            return states.contains("undeliverable (deleted by the operator)")
        }
        #expect(states.contains("undeliverable (deleted by the operator)"), "\(states)")
    }
}
