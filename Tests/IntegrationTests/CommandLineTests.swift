import Foundation
import Testing
import ValiseTestSupport

/// An organisation without a running relay (alice and bob at jakarta, carol at nairobi),
/// for the commands that work offline.
final class OfflineWorld: OrganisationWorld {
    let directory = TemporaryDirectory()

    init() throws {
        try makeOrganisationWithRelay()
        try enroll([("alice@jakarta", nil), ("bob@jakarta", nil), ("carol@nairobi", nil)])
    }

    var entries: Int {
        get throws { try json(valise(["admin", "show", "--json"] + org))["entries"] as? Int ?? -1 }
    }

    func stderrJSON(_ result: ValiseCLI.Result) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(result.stderr.utf8)) as? [String: Any], "stderr: \(result.stderr)")
    }
}

/// What staff meet on the command line (issue 18): shared options before the subcommand,
/// one error format, exit statuses as docs/CLI.md's table, `members`, revoke's confirmation,
/// names in any case, unquoted messages, and errors naming the files asked for.
@Suite("valise: the command line's behaviour (real processes)", .serialized)
struct CommandLineTests {
    @Test("--home, --passphrase-file and --json are accepted before the subcommand too")
    func sharedOptionsFirst() throws {
        let world = try OfflineWorld()
        let alice = world.path("alice@jakarta")
        let whoami = try world.json(world.valise(["--home", alice, "--json", "whoami"]))
        #expect(whoami["member"] as? String == "alice@jakarta")
        let equals = try world.json(world.valise(["--json", "--home=\(alice)", "whoami"]))
        #expect(equals["member"] as? String == "alice@jakarta")
        let file = world.path("passphrase")
        try Data((world.passphrase + "\n").utf8).write(to: URL(fileURLWithPath: file))
        chmod(file, 0o600)
        let fromFile = try ValiseCLI.run(["--passphrase-file", file, "whoami", "--home", alice])
        #expect(fromFile.status == 0, "\(fromFile.stderr)")
        // Down the command tree: `admin show` takes --json from in front of `admin`.
        let show = try world.json(world.valise(["--json", "admin", "show"] + world.org))
        #expect(show["organisation"] as? String == "Ministry")
        // Anything else before the subcommand is left to the parser: an argument error.
        let unknown = try world.valise(["--bogus", "whoami", "--home", alice], expect: 64)
        #expect(unknown.stderr.contains("Error:"), "\(unknown.stderr)")
    }

    @Test("errors: one line, or with --json a JSON object on stderr, with the exit status of the table")
    func errorFormat() throws {
        let world = try OfflineWorld()
        let empty = world.path("nobody")
        let plain = try world.valise(["whoami", "--home", empty], expect: 4)
        #expect(plain.stderr.hasPrefix("valise: error: ") && plain.stderr.split(separator: "\n").count == 1, "\(plain.stderr)")
        let json = try world.valise(["--json", "whoami", "--home", empty], expect: 4)
        let error = try #require(try world.stderrJSON(json)["error"] as? [String: Any])
        #expect(error["exitStatus"] as? Int == 4)
        #expect(error["code"] as? String == "no-keystore")
        #expect((error["message"] as? String)?.isEmpty == false)
        #expect(json.stdout.isEmpty)
    }

    @Test("valise members: the verified directory's members, offline, by mission, as JSON")
    func members() throws {
        let world = try OfflineWorld()
        let alice = world.path("alice@jakarta")
        let listed = try world.valise(["members", "--home", alice])
        #expect(listed.stdout.contains("Ministry: 3 members"), "\(listed.stdout)")
        let carolLine = try #require(listed.stdout.split(separator: "\n").first { $0.hasPrefix("carol@nairobi") })
        let carolFingerprint = try world.fingerprint("carol@nairobi")
        #expect(carolLine.hasSuffix("active") && carolLine.contains(carolFingerprint), "\(carolLine)")
        let jakarta = try world.json(world.valise(["members", "--home", alice, "--mission", "JAKARTA", "--json"]))
        let names = (jakarta["members"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(names == ["alice@jakarta", "bob@jakarta"])

        try world.valise(["admin", "revoke", "carol@nairobi", "--reason", "left the service", "--yes"] + world.org)
        try world.valise(["admin", "bundle", "--out", world.path("org.bundle")] + world.org)
        try world.valise(["init", "--home", alice, "--org-bundle", world.path("org.bundle")])
        let after = try world.json(world.valise(["members", "--home", alice, "--mission", "nairobi", "--json"]))
        let carol = try #require((after["members"] as? [[String: Any]])?.first)
        #expect(carol["state"] as? String == "revoked")
        #expect(carol["homeRelay"] as? String == "hq")
        // Nothing set up (no home at all): exit 4, as for inbox, not a file error.
        let nowhere = try world.valise(["members", "--home", world.path("nobody")], expect: 4)
        #expect(nowhere.stderr.contains("no organisation pinned"), "\(nowhere.stderr)")
    }

    @Test("admin revoke: a non-member is bad input (64); without a terminal it needs --yes; it shows the fingerprint")
    func revoke() throws {
        let world = try OfflineWorld()
        let before = try world.entries
        let stranger = try world.valise(["admin", "revoke", "dave@jakarta", "--reason", "test", "--yes"] + world.org, expect: 64)
        #expect(stranger.stderr.contains("dave@jakarta is not a member"), "\(stranger.stderr)")
        let unconfirmed = try world.valise(["admin", "revoke", "bob@jakarta", "--reason", "test"] + world.org, expect: 64)
        let bobFingerprint = try world.fingerprint("bob@jakarta")
        #expect(unconfirmed.stderr.contains(bobFingerprint), "\(unconfirmed.stderr)")
        #expect(unconfirmed.stderr.contains("--yes"), "\(unconfirmed.stderr)")
        #expect(try world.entries == before)
        try world.valise(["admin", "revoke", "Bob@Jakarta", "--reason", "test", "--yes"] + world.org)
        #expect(try world.entries == before + 1)
    }

    @Test("admin revoke at a terminal asks, and 'no' changes nothing")
    func revokeAsks() throws {
        let world = try OfflineWorld()
        let before = try world.entries
        let session = try TerminalSession(
            ["admin", "revoke", "bob@jakarta", "--reason", "test"] + world.org, environment: ["VALISE_PASSPHRASE": world.passphrase])
        #expect(session.waitFor("Revoke bob@jakarta"))
        session.type("n")
        #expect(session.finish() == 64, "\(session.transcript)")
        #expect(try world.entries == before)
    }

    @Test("member names in any case are taken lower-case")
    func namesInAnyCase() throws {
        let world = try OfflineWorld()
        let dave = world.path("dave")
        try world.valise(["init", "--name", "Dave@Jakarta", "--home", dave] + world.insecure)
        #expect(try world.json(world.valise(["whoami", "--home", dave, "--json"]))["member"] as? String == "dave@jakarta")
        let verify = try world.valise(["verify", "BOB@jakarta", "--home", world.path("alice@jakarta")])
        #expect(verify.stdout.contains("safety number with bob@jakarta"), "\(verify.stdout)")
    }

    @Test("send with unquoted words is refused with a hint to quote them; nothing is written")
    func unquotedWords() throws {
        let world = try OfflineWorld()
        let alice = world.path("alice@jakarta")
        let result = try world.valise(["send", "--to", "bob@jakarta", "--home", alice, "hello", "there", "bob"], expect: 64)
        #expect(result.stderr.contains("3 separate words") && result.stderr.contains("quotes"), "\(result.stderr)")
        let sent = try world.json(world.valise(["sent", "--home", alice, "--json"]))
        #expect((sent["messages"] as? [Any])?.isEmpty ?? true, "\(sent)")
    }

    @Test("admin bundle: a failed write names the file asked for, not a temporary file")
    func bundleErrorNamesTheFile() throws {
        let world = try OfflineWorld()
        let out = world.path("no-such-directory/org.bundle")
        let result = try world.valise(["admin", "bundle", "--out", out] + world.org, expect: 1)
        #expect(result.stderr.contains(out) && !result.stderr.contains(".tmp-"), "\(result.stderr)")
    }

    @Test("a wrong passphrase at the terminal is asked again, three tries; passwd checks it before asking for the new one")
    func terminalRetries() throws {
        let world = try OfflineWorld()
        let alice = world.path("alice@jakarta")
        let whoami = try TerminalSession(["whoami", "--home", alice])
        #expect(whoami.waitFor("Passphrase for "))
        whoami.type("wrong")
        #expect(whoami.waitFor("Wrong passphrase; try again."))
        whoami.type(world.passphrase)
        #expect(whoami.finish() == 0, "\(whoami.transcript)")

        let passwd = try TerminalSession(["passwd", "--home", alice])
        for attempt in 1...3 {
            #expect(passwd.waitFor("Current passphrase for ", occurrences: attempt))
            passwd.type("wrong")
        }
        #expect(passwd.finish() == 2, "\(passwd.transcript)")
        #expect(!passwd.transcript.contains("New passphrase"), "\(passwd.transcript)")
        #expect(passwd.transcript.components(separatedBy: "Current passphrase for ").count == 4)
    }

    @Test("a wrong backup passphrase at the terminal is asked again, as a keystore's is")
    func backupPassphraseRetries() throws {
        let world = try OfflineWorld()
        let alice = world.path("alice@jakarta")
        let good = try KeyBackupTests.passphraseFile(world, "backup.pass", KeyBackupTests.backupPassphrase)
        let backup = world.path("alice.backup")
        try world.valise(["keys", "export", "--home", alice, "--out", backup, "--backup-passphrase-file", good] + world.insecure)
        let restore = try TerminalSession(["init", "--from-backup", backup, "--home", world.path("new-alice")] + world.insecure)
        #expect(restore.waitFor("Passphrase of the backup "))
        restore.type("not the backup passphrase")
        #expect(restore.waitFor("Wrong passphrase; try again."), "\(restore.transcript)")
        restore.type(KeyBackupTests.backupPassphrase)
        #expect(restore.waitFor("New passphrase for alice@jakarta"), "\(restore.transcript)")
        restore.type(world.passphrase)
        #expect(restore.waitFor("Type it again"), "\(restore.transcript)")
        restore.type(world.passphrase)
        #expect(restore.finish() == 0, "\(restore.transcript)")
    }
}
