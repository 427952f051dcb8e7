import ArgumentParser
import ValiseCrypto
import ValiseDirectory

@main
struct Valise: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "valise",
        abstract: "Valise: end-to-end encrypted messaging between a ministry's missions.",
        discussion: """
            Each staff member's device has its own keys, kept in an encrypted keystore in \
            the Valise home (--home, else $VALISE_HOME, else ~/.valise). Start with \
            'valise init --name you@mission', then give your key administrator the \
            fingerprint that 'valise whoami' prints.

            Passphrases come from --passphrase-file FILE (its first line), else from \
            $VALISE_PASSPHRASE (meant for tests and automation), else from a prompt on \
            the terminal (three tries).

            The shared options --home, --passphrase-file and --json may also come before \
            the subcommand: 'valise --home DIR inbox'. With --json, errors are a JSON \
            object on stderr.
            """,
        version: ValiseVersion.string,
        subcommands: [Init.self, Whoami.self, Passwd.self, Send.self, Sync.self, Inbox.self, Read.self, Save.self, Watch.self, Status.self, Sent.self, Members.self, Agent.self, Keys.self, Verify.self, Directory.self, Admin.self]
    )

    static func main() async {
        ProcessHardening.apply()
        let arguments = LeadingOptions.moved(Array(CommandLine.arguments.dropFirst()))
        ErrorOutput.json = ErrorOutput.requested(in: arguments)
        await main(arguments)
    }
}
