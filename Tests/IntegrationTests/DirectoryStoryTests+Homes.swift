import Foundation
import Testing

extension DirectoryStoryTests {
    /// A one-admin organisation with relays hq (added first: the default) and geneva.
    func twoRelayOrganisation() throws {
        try valise(["admin", "init", "--org", path("org"), "--name", "Ministry", "--admin-name", "marie"] + insecure)
        try valise(["admin", "bundle", "--org", path("org"), "--out", path("genesis.bundle")])
        for (relay, port) in [("hq", 7400), ("geneva", 7401)] {
            let made = try ValiseCLI.run(
                ["init", "--dir", path(relay), "--org-bundle", path("genesis.bundle"), "--unencrypted-key"], program: "valised")
            #expect(made.status == 0, "valised init: \(made.stderr)")
            try valise([
                "admin", "add-relay", "--org", path("org"), "--name", relay, "--address", "127.0.0.1:\(port)",
                "--relay-pub", path("\(relay)/relay.pub"),
            ])
        }
    }

    @discardableResult
    func enroll(_ member: String, _ extra: [String] = [], expectStatus: Int32 = 0) throws -> ValiseCLI.Result {
        let home = path(member)
        if !FileManager.default.fileExists(atPath: home) { try valise(["init", "--name", member, "--home", home] + insecure) }
        return try valise(
            ["admin", "enroll", home + "/enrollment.request", "--org", path("org"), "--expect-fingerprint", try fingerprint(home: home)]
                + extra,
            expectStatus: expectStatus)
    }

    /// Each member's home relay and whether it is the default, from `admin show --json`.
    func homes() throws -> [String: String] {
        let show = try json(valise(["admin", "show", "--org", path("org"), "--json"]))
        let members = try #require(show["members"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: members.map { member in
            let home = member["homeRelay"] as? String ?? "none"
            return (member["name"] as? String ?? "", home + (member["homeIsDefault"] as? Bool == true ? "*" : ""))
        })
    }

    @Test("home relays: enroll with --home-relay, move, relay addresses, remove-relay refused while a member is homed there")
    func homeRelays() throws {
        try twoRelayOrganisation()
        try enroll("alice@jakarta")
        let bob = try json(enroll("bob@geneva", ["--home-relay", "geneva", "--json"]))
        #expect(bob["summary"] as? String == "enroll bob@geneva at relay geneva")
        // An unknown relay is refused before any key is unlocked, naming the relays there are.
        let unknown = try enroll("carol@lagos", ["--home-relay", "lagos"], expectStatus: 64)
        #expect(unknown.stderr.contains("no relay named lagos (relays: geneva, hq)"), "\(unknown.stderr)")
        #expect(try homes() == ["alice@jakarta": "hq*", "bob@geneva": "geneva"])

        // geneva cannot go while bob is homed there; moving him first lets it.
        let refused = try valise(["admin", "remove-relay", "--org", path("org"), "--name", "geneva"], expectStatus: 5)
        #expect(refused.stderr.contains("1 member is homed at relay geneva (for example bob@geneva): move them first"), "\(refused.stderr)")
        let sameHome = try valise(["admin", "move", "bob@geneva", "--org", path("org"), "--home-relay", "geneva"], expectStatus: 64)
        #expect(sameHome.stderr.contains("already homed at relay geneva"), "\(sameHome.stderr)")
        let moved = try json(valise(["admin", "move", "bob@geneva", "--org", path("org"), "--home-relay", "hq", "--json"]))
        #expect(moved["summary"] as? String == "move bob@geneva to relay hq")
        #expect(try homes() == ["alice@jakarta": "hq*", "bob@geneva": "hq"])

        // A rotation keeps the home, and says so.
        let rotation = try json(valise(["keys", "rotate", "--home", path("bob@geneva"), "--json"]))
        let rotated = try valise([
            "admin", "rotate", "bob@geneva", path("bob@geneva/rotation.request"), "--org", path("org"),
            "--expect-fingerprint", try #require(rotation["newFingerprint"] as? String),
        ])
        #expect(rotated.stderr.contains("bob@geneva keeps home relay hq"), "\(rotated.stderr)")
        #expect(try homes()["bob@geneva"] == "hq")

        // Addresses: several, in order; a repeated one is refused.
        try valise([
            "admin", "set-relay-addresses", "--org", path("org"), "--name", "hq",
            "--address", "hq-a.example.org:7400", "--address", "[2001:db8::1]:7400",
        ])
        let repeated = try valise([
            "admin", "set-relay-addresses", "--org", path("org"), "--name", "hq",
            "--address", "hq-a.example.org:7400", "--address", "HQ-A.example.org:7400",
        ], expectStatus: 5)
        #expect(repeated.stderr.contains("[relay]"), "\(repeated.stderr)")
        try valise(["admin", "remove-relay", "--org", path("org"), "--name", "geneva"])

        // A fresh device sees the same homes and addresses in the bundle.
        try valise(["admin", "bundle", "--org", path("org"), "--out", path("org.bundle")])
        try valise(["init", "--name", "dan@nairobi", "--home", path("dan"), "--org-bundle", path("org.bundle")] + insecure)
        let verified = try json(valise(["directory", "verify", path("org.bundle"), "--home", path("dan"), "--json"]))
        let relays = try #require(verified["relays"] as? [[String: Any]])
        #expect(relays.map { $0["name"] as? String } == ["hq"])
        #expect(relays.first?["addresses"] as? [String] == ["hq-a.example.org:7400", "[2001:db8::1]:7400"])
        #expect(relays.first?["isDefault"] as? Bool == true)
        let members = try #require(verified["members"] as? [[String: Any]])
        #expect(members.map { $0["homeRelay"] as? String } == ["hq", "hq"])
        let human = try valise(["directory", "verify", path("org.bundle"), "--home", path("dan")])
        #expect(human.stdout.contains("home hq*"), "\(human.stdout)")
        #expect(human.stdout.contains("hq-a.example.org:7400, [2001:db8::1]:7400"), "\(human.stdout)")
    }
}
