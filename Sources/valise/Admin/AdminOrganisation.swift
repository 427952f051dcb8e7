import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

struct AdminAddRelay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-relay",
        abstract: "Add a relay: its address and the keys from the relay.pub file 'valised init' wrote."
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var submission: SubmissionOptions

    @Option(name: .long, help: ArgumentHelp("The relay's name (a-z, 0-9, . _ -).", valueName: "name"))
    var name: String

    @Option(name: .long, help: ArgumentHelp("Where clients reach it.", valueName: "host:port"))
    var address: String

    @Option(name: .long, help: ArgumentHelp("The relay.pub file.", valueName: "file"))
    var relayPub: String

    func run() throws {
        try submitEntry(options, submission) { (_, _) throws(ClientError) -> EntryBody in
            try checkInput { () throws(NameError) in
                try NameRule.checkLabel(name, what: "relay name")
            }
            return .addRelay(try RelayPublicKeyFile.read(relayPub).record(name: name, address: address))
        }
    }
}

struct AdminRemoveRelay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-relay",
        abstract: "Remove a relay.",
        discussion: """
            Refused while a member is homed at it by name (--home-relay or 'valise admin \
            move'): move them first. Members without a named home are homed at the default \
            relay (the first added); if it is removed, the next relay added becomes the default.
            """
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var submission: SubmissionOptions

    @Option(name: .long, help: ArgumentHelp("The relay's name.", valueName: "name"))
    var name: String

    func run() throws {
        try submitEntry(options, submission) { (_, state) throws(ClientError) -> EntryBody in
            try HomeRelayArgument.check(name, in: state)
            // Members homed at the default relay without naming it follow the default: say where to.
            let following = state.activeMembers.filter { $0.home == nil }
            if state.defaultRelay?.name == name, !following.isEmpty {
                let next = state.orderedRelays.first { $0.name != name }
                printNote("relay \(name) is the default relay: \(following.count) member(s) without a named home will be homed at \(next.map { "relay \($0.name), the next default" } ?? "no relay (none is left)") (valise admin move names a home).")
            }
            return .removeRelay(name: name)
        }
    }
}

struct AdminSetAdmins: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-admins",
        abstract: "Replace the set of administrators and the threshold.",
        discussion: "Needs the signatures of the admins in force now, as many as their current threshold."
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var submission: SubmissionOptions

    @Option(name: .long, help: ArgumentHelp("Each admin's public-key file (repeat).", valueName: "file"))
    var adminPub: [String]

    @Option(name: .long, help: ArgumentHelp("How many admin signatures every later entry needs.", valueName: "k"))
    var threshold: UInt8

    func run() throws {
        try submitEntry(options, submission) { (_, _) throws(ClientError) -> EntryBody in
            var admins: [AdminRecord] = []
            for file in adminPub { admins.append(try AdminPublicKeyFile.read(file).admin) }
            return .changeAdmins(AdminSet(admins: admins, threshold: threshold))
        }
    }
}

struct AdminSign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Co-sign a pending entry with your admin key.",
        discussion: """
            Shows what the entry does and asks you to confirm (or pass --yes in a script). \
            With --org, the entry is checked against that organisation's current log and \
            appended there once it has enough signatures.
            """
    )

    @OptionGroup var options: AdminOptions

    @Argument(help: ArgumentHelp("The pending entry file.", valueName: "pending"))
    var pending: String

    @Flag(name: .long, help: "Sign without asking.")
    var yes = false

    func validate() throws {
        if options.key == nil && options.org == nil { throw ValidationError("give your key directory with --key DIR") }
    }

    func run() throws {
        let outcome = try reportingErrors { () throws(ClientError) -> AdminWorkflow.Outcome in
            let organisation = options.org.map(OrganisationDirectory.init(path:)) ?? OrganisationDirectory(path: "/nonexistent")
            let workflow = AdminWorkflow(organisation: organisation)
            let now = Environment.now()
            let (entry, admins) = try workflow.inspect(pendingPath: pending, now: now)
            if !yes {
                let signers = entry.signatures.compactMap { admins.admin(signingKey: $0.signer)?.name }.joined(separator: ", ")
                print("entry \(entry.sequence): \(entry.body.summary)")
                print("signed so far by: \(signers.isEmpty ? "nobody" : signers) (\(admins.threshold) needed)")
                guard try Confirmation.ask("Sign this entry?", flagHint: "pass --yes to sign without asking") else {
                    throw ClientError.usage("not-confirmed", "not signed; nothing was changed")
                }
            }
            let admin = try options.unlockAdmin()
            return try workflow.cosign(pendingPath: pending, signer: admin, append: options.org != nil, now: now)
        }
        EntryOutcomeReport(outcome).print(json: options.json, organisation: options.org)
    }
}

struct AdminAppend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Append a pending entry that has enough signatures to the organisation's log."
    )

    @OptionGroup var options: AdminOptions

    @Argument(help: ArgumentHelp("The pending entry file.", valueName: "pending"))
    var pending: String

    func run() throws {
        let outcome = try reportingErrors { () throws(ClientError) -> AdminWorkflow.Outcome in
            try AdminWorkflow(organisation: try options.organisation()).appendPending(pendingPath: pending, now: Environment.now())
        }
        EntryOutcomeReport(outcome).print(json: options.json, organisation: options.org)
    }
}

struct AdminShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show the organisation: admins, members, missions, fingerprints, revocations, relays, head."
    )

    @OptionGroup var options: AdminOptions

    func run() throws {
        let (report, pending) = try reportingErrors { () throws(ClientError) -> (DirectoryReport, [String]) in
            let organisation = try options.organisation()
            let state = try organisation.load(now: Environment.now()).verifier.state!
            let pending = organisation.pendingEntries().map { item in
                "  \(item.path): entry \(item.entry.sequence) (\(item.entry.body.summary)), \(item.entry.signatures.count) of \(state.admins.threshold) signatures"
            }
            return (DirectoryReport(state: state, checkpoint: try organisation.readCheckpoint(), now: Environment.now()), pending)
        }
        if options.json {
            printJSON(report)
            return
        }
        for line in report.lines { print(line) }
        if !pending.isEmpty {
            print("pending (\(pending.count)):")
            for line in pending { print(line) }
        }
    }
}

struct AdminBundle: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Write the organisation bundle that staff devices pin.",
        discussion: """
            The bundle holds the genesis hash, the whole log (and so the relays' addresses and \
            keys) and the newest checkpoint. Members pin it with 'valise init --org-bundle FILE'.
            """
    )

    @OptionGroup var options: AdminOptions

    @Option(name: .long, help: ArgumentHelp("Where to write the bundle.", valueName: "file"))
    var out: String

    func run() throws {
        let bundle = try reportingErrors { () throws(ClientError) -> OrganisationBundle in
            let bundle = try options.organisation().bundle(now: Environment.now())
            try OrganisationBundleWriter.write(bundle, to: out)
            return bundle
        }
        if options.json {
            printJSON(["bundle": out, "genesis": bundle.genesisHash.hex, "entries": "\(bundle.entries.count)"])
            return
        }
        print("Wrote \(out): \(bundle.entries.count) entries\(bundle.checkpoint == nil ? ", no checkpoint" : ", with the newest checkpoint").")
        print("genesis: \(bundle.genesisHash)")
    }
}

struct AdminCheckpointKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint-key",
        abstract: "Make a checkpoint key and certify it in the directory.",
        discussion: """
            The checkpoint key signs the directory's head regularly ('valise admin \
            checkpoint', run from a timer on an admin-controlled machine), so that a device \
            can tell when it is shown an old directory. It replaces any earlier checkpoint key: \
            once a device has seen the new one, the old key's checkpoints no longer count. The \
            key is certified until a not-after time (--valid-days, 365 by default, at most 730), \
            after which none of its checkpoints count: certify a new key before then.
            """
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var submission: SubmissionOptions

    @Option(name: .long, help: ArgumentHelp("Where to keep the checkpoint key (default: ORG/checkpoint-key).", valueName: "dir"))
    var out: String?

    @Option(name: .long, help: ArgumentHelp("Read the checkpoint key's new passphrase from this file.", valueName: "file"))
    var checkpointPassphraseFile: String?

    @Option(name: .long, help: KDFProfileArgument.profileHelp)
    var kdfProfile: KDFProfileArgument = .standard

    @Option(name: .long, help: ArgumentHelp("Days from now until the key's not-after (1 to 730).", valueName: "days"))
    var validDays: UInt64 = 365

    func validate() throws {
        guard (1...CheckpointKeyCertification.maximumValiditySeconds / 86_400).contains(validDays) else {
            throw ValidationError("--valid-days must be from 1 to \(CheckpointKeyCertification.maximumValiditySeconds / 86_400)")
        }
    }

    func run() throws {
        try submitEntry(options, submission) { (organisation, _) throws(ClientError) -> EntryBody in
            let keys = KeyDirectory(path: out ?? organisation.path + "/checkpoint-key")
            try keys.prepare()
            guard !keys.checkpointKey.exists else { throw ClientError.usage("checkpoint-key-exists", "\(keys.checkpointKey.path) exists already") }
            let checkpoint = CheckpointKeys(created: Environment.now(), signing: SigningKey())
            let passphrase = try Passphrases.new(
                file: checkpointPassphraseFile, flag: "--checkpoint-passphrase-file", variable: "VALISE_CHECKPOINT_PASSPHRASE",
                prompt: "New passphrase for the checkpoint key: ")
            try keys.checkpointKey.write(checkpoint, passphrase: passphrase, parameters: kdfProfile.parameters)
            printNote("Checkpoint key written to \(keys.checkpointKey.path).")
            // From now, which is no later than the entry's timestamp: within the 730-day bound.
            let notAfter = Environment.now() + validDays * 86_400
            return .certifyCheckpointKeyUntil(CheckpointKeyCertification(key: checkpoint.signing.publicKey, notAfter: notAfter))
        }
    }
}

struct AdminCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Sign the directory's current head with the checkpoint key (run from a timer).",
        discussion: "Writes ORG/checkpoint, which 'valise admin bundle' includes."
    )

    @Option(name: .long, help: ArgumentHelp("The directory holding checkpoint.key.", valueName: "dir"))
    var key: String

    @Option(name: .long, help: ArgumentHelp("The organisation directory.", valueName: "dir"))
    var org: String

    @Option(name: .long, help: ArgumentHelp("Read the checkpoint key's passphrase from this file.", valueName: "file"))
    var passphraseFile: String?

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let checkpoint = try reportingErrors { () throws(ClientError) -> Checkpoint in
            let organisation = OrganisationDirectory(path: org)
            let now = Environment.now()
            let verifier = try organisation.load(now: now).verifier
            let file = KeyDirectory(path: key).checkpointKey
            _ = try file.inspect()
            let keys = try Passphrases.unlocking(file: passphraseFile, prompt: "Passphrase for \(file.path): ") { (passphrase) throws(ClientError) in
                try file.unlock(passphrase: passphrase).payload
            }
            let state = verifier.state!
            guard let certified = state.checkpointKeys.last, certified.key == keys.signing.publicKey else {
                throw ClientError(kind: .verification, code: "uncertified-key", message: "this checkpoint key is not the one the directory certifies")
            }
            guard let notAfter = certified.notAfter else {
                throw ClientError(kind: .verification, code: "checkpoint-key-without-expiry", message: "this checkpoint key was certified without a not-after (entry \(certified.certifiedAt), kind 8), so its checkpoints no longer count; certify a new one with: valise admin checkpoint-key")
            }
            guard now <= notAfter else {
                throw ClientError(kind: .verification, code: "checkpoint-key-expired", message: "this checkpoint key's validity ended at \(Timestamp.rfc3339(notAfter)) (its not-after); nothing was signed. Certify a new one with: valise admin checkpoint-key")
            }
            let checkpoint = Checkpoint(sequence: state.headSequence, headHash: state.headHash, time: now, signingKey: keys.signing)
            try organisation.writeCheckpoint(checkpoint)
            return checkpoint
        }
        if json {
            printJSON(["sequence": "\(checkpoint.sequence)", "head": checkpoint.headHash.hex, "time": Timestamp.rfc3339(checkpoint.time)])
            return
        }
        print("Checkpoint: entry \(checkpoint.sequence), head \(checkpoint.headHash.short)…, at \(Timestamp.rfc3339(checkpoint.time)).")
    }
}
