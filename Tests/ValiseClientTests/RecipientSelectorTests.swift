import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory

/// `valise send --to` selectors resolved against a directory of several missions and
/// roles, with mission names written in different Unicode forms and cases.
@Suite("Recipient selectors")
struct RecipientSelectorTests {
    /// alice@jakarta (the sender) and colleagues; "Genève" composed, decomposed and in
    /// capitals; frank@geneva revoked.
    static let directory: DirectoryState = {
        let admin = SigningKey()
        let admins = AdminSet(admins: [AdminRecord(name: "admin", signingKey: admin.publicKey, transportKey: AgreementPrivateKey().publicKey)], threshold: 1)
        let start: UInt64 = 1_767_225_600
        var bodies: [EntryBody] = [.genesis(Genesis(organisation: "Ministry", admins: admins, freshness: .standard))]
        let members: [(String, String, String)] = [
            ("alice@jakarta", "Jakarta", "Ambassador"),
            ("bob@geneva", "Gen\u{00E8}ve", "attaché"),
            ("carol@geneva", "Gene\u{0300}ve", "Consul"),
            ("dave@geneva", "GEN\u{00C8}VE", "ambassador"),
            ("erin@nairobi", "Nairobi", "AMBASSADOR"),
            ("frank@geneva", "Genève", "ambassador"),
            ("gina@jakarta", "Jakarta", "Attach\u{0065}\u{0301}"),
        ]
        for (name, mission, role) in members {
            let request = MemberRequest.enrollment(
                member: try! MemberName(name), identityKey: SigningKey(), transportKey: AgreementPrivateKey().publicKey, created: start)
            bodies.append(.enroll(Enrollment(request: request, mission: mission, role: role)))
        }
        bodies.append(.revoke(Revocation(target: .member(try! MemberName("frank@geneva")), reason: "left the service")))
        var entries: [DirectoryEntry] = []
        for body in bodies {
            let previous = entries.last
            entries.append(DirectoryEntry(
                sequence: UInt64(entries.count), previousHash: previous?.hash ?? .zero, timestamp: start + 60 * UInt64(entries.count), body: body
            ).signed(by: admin))
        }
        return try! DirectoryVerifier.verify(entries, pinnedGenesis: nil, now: start + 86_400).state!
    }()

    static let alice = try! MemberName("alice@jakarta")

    func resolve(_ text: String) throws -> [String] {
        try RecipientSelector(parsing: text).resolve(in: Self.directory, sender: Self.alice).map(\.value)
    }

    @Test("a mission matches its members whatever the Unicode form or case; revoked members never")
    func mission() throws {
        #expect(try resolve("mission:genève") == ["bob@geneva", "carol@geneva", "dave@geneva"])
        #expect(try resolve("mission:Gene\u{0300}ve") == ["bob@geneva", "carol@geneva", "dave@geneva"])
        #expect(try resolve("mission:GENÈVE") == ["bob@geneva", "carol@geneva", "dave@geneva"])
        // Exact after folding: no accent, no match (a mission called Geneve is another).
        #expect(throws: ClientError.self) { try resolve("mission:geneve") }
    }

    @Test("a role matches across missions; the sender is left out")
    func role() throws {
        #expect(try resolve("role:ambassador") == ["dave@geneva", "erin@nairobi"])
        #expect(try resolve("role:attaché") == ["bob@geneva", "gina@jakarta"])
    }

    @Test("all is every active member but the sender; names and selectors mix, each member once")
    func mixed() throws {
        #expect(try resolve("all") == ["bob@geneva", "carol@geneva", "dave@geneva", "erin@nairobi", "gina@jakarta"])
        #expect(try resolve("mission:nairobi, Bob@Geneva,role:ambassador") == ["erin@nairobi", "bob@geneva", "dave@geneva"])
        #expect(try resolve("alice@jakarta,mission:jakarta") == ["gina@jakarta"])
        let selector = try RecipientSelector(parsing: "  mission:geneva,bob@nairobi ")
        #expect(selector.text == "mission:geneva,bob@nairobi")
        #expect(selector.isCircular)
    }

    @Test("a plain list of names is returned as given, for compose to check as before")
    func plainNames() throws {
        let selector = try RecipientSelector(parsing: "bob@geneva,Carol@Geneva,bob@geneva")
        #expect(!selector.isCircular)
        #expect(try selector.resolve(in: Self.directory, sender: Self.alice).map(\.value) == ["bob@geneva", "carol@geneva", "bob@geneva"])
    }

    @Test("a selector that matches nobody is refused, naming it", arguments: ["mission:paris", "role:nobody", "mission:genève,role:chef"])
    func nobody(_ text: String) throws {
        let error = try #require(throws: ClientError.self) { try resolve(text) }
        #expect(error.code == "selector-matches-nobody")
        #expect(error.message.contains(text.split(separator: ",").last.map(String.init) ?? text))
        #expect(error.message.contains("nothing was sent"))
    }

    @Test("a selector that matches only the sender is refused; revoked members do not count")
    func onlySelf() throws {
        let erin = try MemberName("erin@nairobi")
        #expect(try RecipientSelector(parsing: "role:ambassador").resolve(in: Self.directory, sender: erin).map(\.value) == ["alice@jakarta", "dave@geneva"])
        let error = #expect(throws: ClientError.self) { try RecipientSelector(parsing: "mission:nairobi").resolve(in: Self.directory, sender: erin) }
        #expect(error?.code == "selector-matches-nobody")
    }

    @Test("malformed lists are refused before anything is resolved", arguments: ["group:geneva", "mission:", "role: ", ",", "", "bob"])
    func malformed(_ text: String) {
        #expect(throws: ClientError.self) { try RecipientSelector(parsing: text) }
    }

    @Test("a circular's text is at most 512 bytes")
    func tooLong() {
        let long = "mission:geneva," + Array(repeating: "bob@geneva", count: 60).joined(separator: ",")
        let error = #expect(throws: ClientError.self) { try RecipientSelector(parsing: long) }
        #expect(error?.code == "selector-too-long")
        // A plain list of names may be as long as it likes.
        #expect(throws: Never.self) { try RecipientSelector(parsing: Array(repeating: "bob@geneva", count: 60).joined(separator: ",")) }
    }
}
