import Foundation
import Testing
import ValiseTestSupport

/// The directory's whole story with real processes: an organisation with 2-of-3 admins,
/// three members in two missions, a key rotation, a revocation, a bundle, and a fresh
/// device that verifies it and sees the same state.
@Suite("Directory story (real processes)", .serialized)
struct DirectoryStoryTests {
    let directory = TemporaryDirectory()
    let insecure = ["--kdf-profile", "insecure-test"]

    func path(_ name: String) -> String { directory.file(name) }

    /// Runs valise with the shared test passphrase; fails the test on a non-zero status.
    @discardableResult
    func valise(_ arguments: [String], expectStatus: Int32 = 0, sourceLocation: SourceLocation = #_sourceLocation) throws -> ValiseCLI.Result {
        let result = try ValiseCLI.run(arguments, environment: ["VALISE_PASSPHRASE": "correct horse battery staple"])
        #expect(result.status == expectStatus, "valise \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        return result
    }

    func json(_ result: ValiseCLI.Result) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    /// The single pending entry's path in the organisation.
    func pendingEntry() throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: path("org/pending")).filter { $0.hasSuffix(".pending") }
        #expect(names.count == 1, "pending entries: \(names)")
        return path("org/pending/") + (names.first ?? "")
    }

    /// Marie proposes with her key; Jean co-signs, which appends.
    func twoAdmins(_ arguments: [String]) throws {
        let proposed = try json(valise(["admin"] + arguments + ["--org", path("org"), "--key", path("marie"), "--json"]))
        #expect(proposed["appended"] as? Bool == false)
        #expect(proposed["signaturesNeeded"] as? Int == 1)
        let cosigned = try json(valise(["admin", "sign", "--key", path("jean"), try pendingEntry(), "--org", path("org"), "--yes", "--json"]))
        #expect(cosigned["appended"] as? Bool == true)
    }

    func fingerprint(home: String) throws -> String {
        try json(valise(["whoami", "--home", home, "--json"]))["fingerprint"] as? String ?? ""
    }

    @Test("2-of-3 admins, three members in two missions, a rotation, a revocation, a bundle, a fresh device")
    func story() throws {
        // Each admin makes keys on their own machine.
        for admin in ["marie", "jean", "paul"] {
            try valise(["admin", "keygen", "--out", path(admin), "--name", admin] + insecure)
        }
        let genesis = try json(valise([
            "admin", "init", "--org", path("org"), "--name", "Ministry of Foreign Affairs",
            "--admin-pub", path("marie/admin.pub"), "--admin-pub", path("jean/admin.pub"), "--admin-pub", path("paul/admin.pub"),
            "--threshold", "2", "--key", path("marie"), "--json",
        ]))
        #expect(genesis["appended"] as? Bool == false, "one signature is not enough for a 2-of-3 genesis")
        // Two signatures by one admin do not count twice.
        let again = try json(valise(["admin", "sign", "--key", path("marie"), try pendingEntry(), "--org", path("org"), "--yes", "--json"]))
        #expect(again["appended"] as? Bool == false)
        try valise(["admin", "sign", "--key", path("paul"), try pendingEntry(), "--org", path("org"), "--yes"])
        let genesisHash = try #require(genesis["hash"] as? String)

        // Three members, two missions: each device makes its keys and an enrollment request.
        let members = [("alice@jakarta", "Embassy in Jakarta", "consul"), ("bob@jakarta", "Embassy in Jakarta", "attaché"),
                       ("carol@nairobi", "Embassy in Nairobi", "ambassador")]
        for (name, mission, role) in members {
            let home = path(name)
            try valise(["init", "--name", name, "--home", home] + insecure)
            try twoAdmins([
                "enroll", home + "/enrollment.request", "--mission", mission, "--role", role,
                "--expect-fingerprint", try fingerprint(home: home),
            ])
        }
        // A wrong fingerprint is refused and changes nothing.
        try valise(["init", "--name", "eve@jakarta", "--home", path("eve@jakarta")] + insecure)
        try valise([
            "admin", "enroll", path("eve@jakarta/enrollment.request"), "--org", path("org"), "--key", path("marie"),
            "--expect-fingerprint", "00000 00000 00000 00000 00000 00000",
        ], expectStatus: 5)

        // Bob rotates his keys; Carol is revoked.
        let rotation = try json(valise(["keys", "rotate", "--home", path("bob@jakarta"), "--json"]))
        let newFingerprint = try #require(rotation["newFingerprint"] as? String)
        try twoAdmins(["rotate", "bob@jakarta", path("bob@jakarta/rotation.request"), "--expect-fingerprint", newFingerprint])
        try twoAdmins(["revoke", "carol@nairobi", "--reason", "left the service", "--yes"])

        let show = try json(valise(["admin", "show", "--org", path("org"), "--json"]))
        #expect(show["entries"] as? Int == 6)
        try valise(["admin", "bundle", "--org", path("org"), "--out", path("org.bundle")])

        // A fresh device: pins the bundle (checking the genesis hash read to it) and verifies.
        try valise(["init", "--name", "dan@nairobi", "--home", path("dan"), "--org-bundle", path("org.bundle"), "--expect-genesis", genesisHash] + insecure)
        let verified = try json(valise(["directory", "verify", path("org.bundle"), "--home", path("dan"), "--json"]))
        for key in ["organisation", "genesis", "entries", "headHash", "threshold"] {
            #expect("\(verified[key] ?? "")" == "\(show[key] ?? "")", "\(key) differs")
        }
        let listed = try #require(verified["members"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: listed.map { ($0["name"] as? String ?? "", $0) })
        #expect(byName.keys.sorted() == ["alice@jakarta", "bob@jakarta", "carol@nairobi"])
        #expect(byName["alice@jakarta"]?["mission"] as? String == "Embassy in Jakarta")
        #expect(byName["carol@nairobi"]?["mission"] as? String == "Embassy in Nairobi")
        #expect(byName["carol@nairobi"]?["status"] as? String == "revoked")
        #expect(byName["carol@nairobi"]?["revocationReason"] as? String == "left the service")
        #expect(byName["bob@jakarta"]?["rotations"] as? Int == 1)
        #expect(byName["bob@jakarta"]?["fingerprint"] as? String == newFingerprint)
        #expect((verified["admins"] as? [[String: Any]])?.map { $0["name"] as? String ?? "" } == ["marie", "jean", "paul"])

        // Bob's device takes the bundle and switches to the rotated keys.
        try valise(["init", "--home", path("bob@jakarta"), "--org-bundle", path("org.bundle")])
        let bob = try valise(["whoami", "--home", path("bob@jakarta")])
        #expect(bob.stdout.contains("Key rotation completed"))
        #expect(try fingerprint(home: path("bob@jakarta")) == newFingerprint)

        // Alice and Bob see the same safety number, whichever of them asks.
        try valise(["init", "--home", path("alice@jakarta"), "--org-bundle", path("org.bundle")])
        let fromAlice = try json(valise(["verify", "bob@jakarta", "--home", path("alice@jakarta"), "--json"]))
        let fromBob = try json(valise(["verify", "alice@jakarta", "--home", path("bob@jakarta"), "--json"]))
        #expect(fromAlice["safetyNumber"] as? String == fromBob["safetyNumber"] as? String)
        #expect((fromAlice["safetyNumber"] as? String)?.filter(\.isNumber).count == 60)
    }

    @Test("a tampered bundle is refused with the entry and the rule; the pinned copy is unchanged")
    func tamperedBundle() throws {
        try valise(["admin", "init", "--org", path("org"), "--name", "Ministry", "--admin-name", "marie"] + insecure)
        try valise(["init", "--name", "alice@jakarta", "--home", path("alice")] + insecure)
        try valise([
            "admin", "enroll", path("alice/enrollment.request"), "--org", path("org"),
            "--expect-fingerprint", try fingerprint(home: path("alice")),
        ])
        try valise(["admin", "bundle", "--org", path("org"), "--out", path("good.bundle")])
        try valise(["init", "--home", path("alice"), "--org-bundle", path("good.bundle")])
        let pinned = try Data(contentsOf: URL(fileURLWithPath: path("alice/organisation.bundle")))

        // Change one byte of the enrollment's mission text ("alice@jakarta"'s default is "jakarta").
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path("good.bundle")))
        let mission = Data("jakarta".utf8)
        let range = try #require(bytes.range(of: mission, options: .backwards))
        bytes[range.lowerBound] ^= 0x20
        try bytes.write(to: URL(fileURLWithPath: path("bad.bundle")))

        let refused = try valise(["init", "--home", path("alice"), "--org-bundle", path("bad.bundle")], expectStatus: 5)
        #expect(refused.stderr.contains("entry 1"), "\(refused.stderr)")
        #expect(refused.stderr.contains("invalid signature"), "\(refused.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("alice/organisation.bundle"))) == pinned)

        let checked = try valise(["directory", "verify", path("bad.bundle"), "--home", path("alice")], expectStatus: 5)
        #expect(checked.stderr.contains("entry 1"))
    }
}
