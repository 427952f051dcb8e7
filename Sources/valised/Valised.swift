import ArgumentParser
import ValiseCrypto

@main
struct Valised: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "valised",
        abstract: "The Valise relay daemon: stores and forwards sealed envelopes it cannot read.",
        discussion: """
            The relay admits only devices enrolled in the organisation's directory, keeps \
            each sealed envelope durably until its recipient has it, and delivers in \
            precedence order. Its commands (init, run, status) are described in docs/CLI.md \
            as they land.
            """,
        version: ValiseVersion.string
    )

    static func main() async {
        ProcessHardening.apply()
        await main(nil)
    }
}
