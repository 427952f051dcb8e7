import ArgumentParser
import Testing
@testable import valise

/// `LeadingOptions`: exactly the shared options, only in front of the first subcommand word.
@Suite("valise: shared options before the subcommand")
struct LeadingOptionsTests {
    @Test("moved behind the subcommand path, --opt=value too; parsed as the subcommand's own")
    func moved() throws {
        #expect(LeadingOptions.moved(["--home", "H", "inbox"]) == ["inbox", "--home", "H"])
        #expect(LeadingOptions.moved(["--json", "--home=H", "admin", "show", "--org", "O"])
            == ["admin", "show", "--json", "--home=H", "--org", "O"])
        let parsed = try Valise.parseAsRoot(LeadingOptions.moved(["--home", "H", "--json", "--passphrase-file", "P", "whoami"]))
        let whoami = try #require(parsed as? Valise.Whoami)
        #expect(whoami.options.home == "H" && whoami.options.json && whoami.options.passphraseFile == "P")
    }

    @Test("anything else in front, `--`, or no subcommand: the arguments stay as they were")
    func leftAlone() {
        for arguments in [
            ["--help"], ["--version"], ["--bogus", "inbox"], ["--", "--json", "inbox"], ["--json"], ["--home"],
            ["--json", "--verbose", "inbox"], ["--json", "no-such-command"], ["inbox", "--json"],
        ] {
            #expect(LeadingOptions.moved(arguments) == arguments, "\(arguments)")
        }
        // Words after the subcommand are never looked at, `--` included.
        #expect(LeadingOptions.moved(["--json", "send", "--to", "bob@jakarta", "--", "--home"]) == ["send", "--json", "--to", "bob@jakarta", "--", "--home"])
    }

    @Test("--json anywhere before `--` asks for JSON errors")
    func jsonErrors() {
        #expect(ErrorOutput.requested(in: ["whoami", "--json"]))
        #expect(!ErrorOutput.requested(in: ["send", "--to", "b@j", "--", "--json"]))
    }
}
