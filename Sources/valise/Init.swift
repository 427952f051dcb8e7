import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create this device's keys, or pin the organisation it belongs to.",
            discussion: """
                With --name, makes an identity key (it signs, and proves who you are to \
                colleagues) and a transport key (for the connection to the relay), stores \
                both encrypted under your passphrase, and writes an enrollment request for \
                your key administrator. Choose a passphrase of at least 12 characters; a few \
                unrelated words work well. Then give the administrator the request file and, \
                by a channel you trust (in person, by phone), the fingerprint printed below.

                With --org-bundle, pins the organisation bundle your administrator gave you: \
                the genesis it names is the only one this device will ever accept. On a \
                device that is already set up, --org-bundle alone takes a newer bundle of \
                the same organisation.

                With --from-backup, replaces a lost device from a backup made by 'valise keys \
                export': this device gets new keys, and a rotation request from the backed-up \
                key to them, signed by both, goes to your key administrator. The backed-up keys \
                sign that request and are not kept: once the administrator applies it, this \
                device is admitted and the lost one no longer is.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Option(name: .long, help: ArgumentHelp(
            "Your member name, name@mission, for example alice@jakarta.", valueName: "name@mission"))
        var name: String?

        @Option(name: .long, help: ArgumentHelp("The organisation bundle to pin.", valueName: "file"))
        var orgBundle: String?

        @Option(name: .long, help: ArgumentHelp(
            "Refuse the bundle unless its genesis hash is this one (as your administrator read it to you).",
            valueName: "hash"))
        var expectGenesis: String?

        @Option(name: .long, help: ArgumentHelp(
            "Where to write the enrollment request (default: HOME/enrollment.request).", valueName: "file"))
        var requestOut: String?

        @Option(name: .long, help: ArgumentHelp(
            "Make a new device from this key backup ('valise keys export') and a rotation request.", valueName: "file"))
        var fromBackup: String?

        @Option(name: .long, help: ArgumentHelp(
            "With --from-backup: read the backup's passphrase from the first line of this file (else $VALISE_BACKUP_PASSPHRASE, else the terminal).",
            valueName: "file"))
        var backupPassphraseFile: String?

        @Flag(name: .long, help: "Replace an existing device keystore (the old file is kept as a backup).")
        var force = false

        @Option(name: .long, help: KDFProfileArgument.profileHelp)
        var kdfProfile: KDFProfileArgument = .standard

        func validate() throws {
            if name == nil && orgBundle == nil && fromBackup == nil {
                throw ValidationError("give --name NAME@MISSION to create a device, --from-backup FILE to replace one, or --org-bundle FILE to pin an organisation")
            }
            if backupPassphraseFile != nil && fromBackup == nil {
                throw ValidationError("--backup-passphrase-file goes with --from-backup")
            }
            if let expectGenesis, EntryHash(hex: expectGenesis) == nil {
                throw ValidationError("--expect-genesis takes the 64 hexadecimal digits of a genesis hash")
            }
        }

        func run() throws {
            let home = try reportingErrors { () throws(ClientError) -> ValiseHome in try options.resolveHome() }
            if let fromBackup {
                try restoreDevice(from: fromBackup, home: home)
            } else if let name {
                try createDevice(name: name, home: home)
            } else if !DeviceKeystore(home: home).exists {
                throw report(ClientError(kind: .notSetUp, code: "no-device", message: "no device in \(home.path) yet: give --name NAME@MISSION to create one"))
            }
            if let orgBundle { try pin(orgBundle, home: home) }
        }

        private func createDevice(name: String, home: ValiseHome) throws {
            let (device, backup, requestPath) = try reportingErrors { () throws(ClientError) -> (DeviceReport, String?, String) in
                let memberName = try MemberName.argument(name)
                let keystore = DeviceKeystore(home: home)
                if keystore.exists && !force {
                    // Say so before asking for a passphrase that would not be used.
                    throw ClientError(
                        kind: .usage, code: "device-exists",
                        message: "a device keystore already exists at \(keystore.path); use --force to replace it (the old file is kept as a backup)"
                    )
                }
                let passphrase = try Passphrases.new(file: options.passphraseFile, prompt: "New passphrase for \(memberName): ")
                let created = try keystore.create(
                    memberName: memberName, passphrase: passphrase, parameters: kdfProfile.parameters,
                    force: force, now: Environment.now()
                )
                let requestPath = requestOut ?? home.enrollmentRequestPath
                try RequestFile.write(created.identity.enrollmentRequest(), to: requestPath)
                let report = DeviceReport(identity: created.identity, path: keystore.path, parameters: kdfProfile.parameters)
                return (report, created.backupPath, requestPath)
            }
            if let warning = DeviceReport.weakKeystoreWarning(kdfProfile.parameters) { printWarning(warning) }
            if options.json {
                printJSON(device)
                return
            }
            print("Created the device keys for \(device.member).")
            for line in device.lines { print(line) }
            if let backup { print("The previous keystore was kept as \(backup)") }
            print("Enrollment request written to \(requestPath).")
            print("Give it to your key administrator, and read them this fingerprint by a channel you trust.")
        }

        private func pin(_ file: String, home: ValiseHome) throws {
            let (result, state) = try reportingErrors { () throws(ClientError) -> (PinnedOrganisation.PinResult, DirectoryState) in
                let bundle = try DirectoryFileReader.read(file).bundle
                let pinned = PinnedOrganisation(home: home)
                let result = try pinned.pin(bundle, expectedGenesis: expectGenesis.flatMap(EntryHash.init(hex:)), now: Environment.now(), file: file)
                return (result, try pinned.load(now: Environment.now()).state)
            }
            if options.json {
                var report = ["organisation": state.organisation, "genesis": state.genesisHash.hex, "entries": "\(state.headSequence + 1)"]
                switch result {
                case .pinned: report["result"] = "pinned"
                case .updated: report["result"] = "updated"
                case .unchanged: report["result"] = "unchanged"
                }
                printJSON(report)
                return
            }
            switch result {
            case .pinned(let genesis):
                print("Pinned the organisation \"\(state.organisation)\".")
                print("genesis: \(genesis)")
                if expectGenesis == nil {
                    print("Compare this genesis hash with the one your key administrator reads to you.")
                }
            case .updated(let from, let to):
                print("Updated the organisation \"\(state.organisation)\": \(from) → \(to) entries.")
            case .unchanged:
                print("The organisation \"\(state.organisation)\" is already up to date (\(state.headSequence + 1) entries).")
            }
        }
    }
}
