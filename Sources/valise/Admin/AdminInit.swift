import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

struct AdminInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the organisation: its genesis entry and, for a single admin, the admin's keys.",
        discussion: """
            Quick start, one administrator: 'valise admin init --org DIR --name "Ministry of \
            Foreign Affairs"' makes an admin key pair in DIR (encrypted under a new \
            passphrase) and the genesis, signed.

            K of N administrators: each admin first runs 'valise admin keygen' on their own \
            machine and hands over the admin.pub file it writes. Then 'valise admin init \
            --org DIR --name … --admin-pub A.pub --admin-pub B.pub --admin-pub C.pub \
            --threshold 2 [--key MY-KEY-DIR]' writes the genesis; it is signed with your key \
            if you give --key, and the others co-sign it like any entry.

            Print the genesis hash and read it to every member: it identifies the organisation.
            """
    )

    @OptionGroup var options: AdminOptions

    @Option(name: .long, help: ArgumentHelp("The organisation's name.", valueName: "name"))
    var name: String

    @Option(name: .long, help: ArgumentHelp(
        "An admin's public-key file from 'valise admin keygen' (repeat for each admin).", valueName: "file"))
    var adminPub: [String] = []

    @Option(name: .long, help: ArgumentHelp("How many admin signatures every entry needs (default: 1).", valueName: "k"))
    var threshold: UInt8 = 1

    @Option(name: .long, help: ArgumentHelp("Quick start only: your admin name.", valueName: "name"))
    var adminName: String = "admin"

    @Option(name: .long, help: "Warn when the newest checkpoint is older than this (s, m, h or d).")
    var warnAfter = DurationArgument(seconds: FreshnessPolicy.standard.warnAfterSeconds)

    @Option(name: .long, help: "Refuse ordinary sends when the newest checkpoint is older than this.")
    var refuseAfter = DurationArgument(seconds: FreshnessPolicy.standard.refuseAfterSeconds)

    @Option(name: .long, help: KDFProfileArgument.profileHelp)
    var kdfProfile: KDFProfileArgument = .standard

    func validate() throws {
        if adminPub.isEmpty && threshold != 1 { throw ValidationError("a single-admin organisation has threshold 1; give --admin-pub files for more admins") }
        if !adminPub.isEmpty && Int(threshold) > adminPub.count { throw ValidationError("--threshold cannot exceed the number of admins (\(adminPub.count))") }
        if warnAfter.seconds > refuseAfter.seconds { throw ValidationError("--warn-after must not be longer than --refuse-after") }
    }

    func run() throws {
        let (outcome, adminFingerprint) = try reportingErrors { () throws(ClientError) -> (AdminWorkflow.Outcome, String?) in
            let organisation = try options.organisation()
            guard !organisation.hasLog else {
                throw ClientError.usage("organisation-exists", "\(organisation.logPath) exists already: this directory holds an organisation")
            }
            try checkInput { () throws(NameError) in
                try NameRule.checkText(name, what: "organisation name", maximum: Genesis.maximumOrganisationLength)
            }
            let freshness = FreshnessPolicy(warnAfterSeconds: warnAfter.seconds, refuseAfterSeconds: refuseAfter.seconds)
            let workflow = AdminWorkflow(organisation: organisation)
            let now = Environment.now()

            if adminPub.isEmpty {
                // Quick start: this machine's admin keys live in the organisation directory.
                try checkInput { () throws(NameError) in
                    try NameRule.checkLabel(adminName, what: "admin name")
                }
                let keys = try options.keyDirectory()
                guard !keys.adminKey.exists else {
                    throw ClientError.usage("admin-exists", "\(keys.adminKey.path) exists already; give --admin-pub files to use existing keys")
                }
                try organisation.prepare()
                try keys.prepare()
                let admin = AdminKeys.generate(name: adminName, now: now)
                let passphrase = try Passphrases.new(file: options.passphraseFile, prompt: "New passphrase for admin \(adminName): ")
                try keys.adminKey.write(admin, passphrase: passphrase, parameters: kdfProfile.parameters)
                try AdminPublicKeyFile.write(admin.publicFile, to: keys.adminPublicPath)
                let genesis = Genesis(
                    organisation: name, admins: AdminSet(admins: [admin.record], threshold: 1), freshness: freshness)
                return (try workflow.createGenesis(genesis, signer: admin, now: now), admin.fingerprint.description)
            }

            var admins: [AdminRecord] = []
            for file in adminPub { admins.append(try AdminPublicKeyFile.read(file).admin) }
            let genesis = Genesis(organisation: name, admins: AdminSet(admins: admins, threshold: threshold), freshness: freshness)
            // Sign with this machine's admin key when there is one (--key, or admin.key in --org).
            let inOrganisation = try options.keyDirectory().adminKey.exists
            let hasKey = options.key != nil || inOrganisation
            let signer = hasKey ? try options.unlockAdmin() : nil
            return (try workflow.createGenesis(genesis, signer: signer, now: now), nil)
        }
        if options.json {
            printJSON(EntryOutcomeReport(outcome))
            return
        }
        if let adminFingerprint { print("Admin key made; fingerprint \(adminFingerprint).") }
        if outcome.appended {
            print("Created the organisation \"\(name)\".")
        } else {
            EntryOutcomeReport(outcome).print(json: false, organisation: options.org)
        }
        print("genesis: \(outcome.entry.hash)")
        print("Read this genesis hash to every member: it identifies the organisation.")
    }
}

struct AdminKeygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make your admin key pair on this machine.",
        discussion: """
            Writes DIR/admin.key (encrypted under a new passphrase) and DIR/admin.pub, the \
            public file to hand to whoever writes the genesis. Run it on your own machine, \
            never on a network-facing host; the private key never leaves it.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Where to keep the keys.", valueName: "dir"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("Your admin name (a-z, 0-9, . _ -).", valueName: "name"))
    var name: String

    @Option(name: .long, help: ArgumentHelp("Read the new passphrase from this file (mode 0600).", valueName: "file"))
    var passphraseFile: String?

    @Option(name: .long, help: KDFProfileArgument.profileHelp)
    var kdfProfile: KDFProfileArgument = .standard

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let (admin, publicPath) = try reportingErrors { () throws(ClientError) -> (AdminKeys, String) in
            try checkInput { () throws(NameError) in
                try NameRule.checkLabel(name, what: "admin name")
            }
            let keys = KeyDirectory(path: out)
            try keys.prepare()
            guard !keys.adminKey.exists else { throw ClientError.usage("admin-exists", "\(keys.adminKey.path) exists already") }
            let admin = AdminKeys.generate(name: name, now: Environment.now())
            let passphrase = try Passphrases.new(file: passphraseFile, prompt: "New passphrase for admin \(name): ")
            try keys.adminKey.write(admin, passphrase: passphrase, parameters: kdfProfile.parameters)
            try AdminPublicKeyFile.write(admin.publicFile, to: keys.adminPublicPath)
            return (admin, keys.adminPublicPath)
        }
        if let warning = DeviceReport.weakKeystoreWarning(kdfProfile.parameters) { printWarning(warning) }
        if json {
            printJSON(["admin": admin.name, "fingerprint": admin.fingerprint.description, "publicFile": publicPath] as [String: String])
            return
        }
        print("Admin key pair made for \(admin.name).")
        print("fingerprint: \(admin.fingerprint)")
        print("Public file: \(publicPath). Hand it over, and read the fingerprint to whoever writes the genesis.")
    }
}
