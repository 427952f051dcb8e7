import ArgumentParser
import ValiseClient
import ValiseCrypto

extension Valise {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create this device's keys and its encrypted keystore.",
            discussion: """
                Makes an identity key (it signs, and proves who you are to colleagues) and a \
                transport key (for the connection to the relay), and stores both encrypted \
                under your passphrase. Choose a passphrase of at least 12 characters; a few \
                unrelated words work well. Then give your key administrator the fingerprint \
                printed below, by a channel you trust, to be enrolled.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Option(name: .long, help: ArgumentHelp(
            "Your member name, name@mission, for example alice@jakarta.", valueName: "name@mission"))
        var name: String

        @Flag(name: .long, help: "Replace an existing device keystore (the old file is kept as a backup).")
        var force = false

        @Option(name: .long, help: KDFProfileArgument.profileHelp)
        var kdfProfile: KDFProfileArgument = .standard

        func run() throws {
            let report = try reportingErrors { () throws(ClientError) -> (DeviceReport, String?) in
                let memberName = try MemberName(name)
                let home = try options.resolveHome()
                let keystore = DeviceKeystore(home: home)
                if keystore.exists && !force {
                    // Say so before asking for a passphrase that would not be used.
                    throw ClientError(
                        kind: .usage, code: "device-exists",
                        message: "a device keystore already exists at \(keystore.path); use --force to replace it (the old file is kept as a backup)"
                    )
                }
                let reader = PassphraseReader()
                let source = reader.source(file: options.passphraseFile, variable: "VALISE_PASSPHRASE")
                let passphrase = try reader.readNew(from: source, prompt: "New passphrase for \(memberName): ")
                let created = try keystore.create(
                    memberName: memberName, passphrase: passphrase, parameters: kdfProfile.parameters,
                    force: force, now: Environment.now()
                )
                return (DeviceReport(identity: created.identity, path: keystore.path, parameters: kdfProfile.parameters), created.backupPath)
            }
            let (device, backup) = report
            if let warning = DeviceReport.weakKeystoreWarning(kdfProfile.parameters) { printWarning(warning) }
            if options.json {
                printJSON(device)
                return
            }
            print("Created the device keys for \(device.member).")
            for line in device.lines { print(line) }
            if let backup { print("The previous keystore was kept as \(backup)") }
            print("Give your key administrator this fingerprint, by a channel you trust, to be enrolled.")
        }
    }
}
