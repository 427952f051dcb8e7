import ArgumentParser
import ValiseCrypto

@main
struct Valised: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "valised",
        abstract: "The Valise relay daemon: stores and forwards sealed envelopes it cannot read.",
        discussion: """
            The relay admits only devices enrolled in the organisation's directory (and \
            administrators, to publish the directory), keeps each sealed envelope durably \
            until its recipient has it, and delivers in precedence order. Set it up with \
            'valised init', then run it with 'valised run'.
            """,
        version: ValiseVersion.string,
        subcommands: [Init.self, Run.self, Check.self, Status.self, Queue.self]
    )

    static func main() async {
        ProcessHardening.apply()
        await main(nil)
    }
}
