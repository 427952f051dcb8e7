import ArgumentParser
import Foundation
import ValiseRelay

extension Valised {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the relay's configuration and print every setting with its source.",
            discussion: """
                Reads the settings exactly as 'valised run' would — these flags, then VALISED_* \\
                environment variables, then the file given with --config, then the defaults — \\
                and prints each as "KEY: VALUE (SOURCE)". An unknown key or variable, or a \\
                value that does not parse, is an error naming it and its source. Starts \\
                nothing and opens no key.
                """
        )

        @OptionGroup var settingsOptions: SettingsOptions

        func run() throws {
            let settings: RelaySettings
            do {
                settings = try settingsOptions.load()
                // The PostgreSQL settings checked as run would (the password file is named, not read).
                _ = try StoreSettings.postgres(settings.relay.store, readPassword: false)
            } catch {
                FileHandle.standardError.write(Data("valised: error: configuration: \(error)\n".utf8))
                throw ExitCode.failure
            }
            for line in settings.effective.lines { print(line) }
        }
    }
}
