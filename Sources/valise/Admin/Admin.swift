import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise {
    struct Admin: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Key administration: the organisation's signed directory of members, keys and relays.",
            discussion: """
                Every change is an entry in an append-only, hash-chained log signed by the \
                organisation's administrators. When the organisation needs more than one \
                admin signature, a command writes a pending entry for the others to co-sign \
                with 'valise admin sign' on their own machines; secret keys never travel.
                """,
            subcommands: [
                AdminInit.self, AdminKeygen.self, AdminKeysCommand.self, AdminEnroll.self, AdminRotate.self, AdminRevoke.self,
                AdminMove.self, AdminAddRelay.self, AdminRemoveRelay.self, AdminSetRelayAddresses.self, AdminSetAdmins.self, AdminSign.self, AdminAppend.self,
                AdminShow.self, AdminBundle.self, AdminCheckpointKey.self, AdminCheckpoint.self, AdminPublish.self, AdminPull.self,
            ]
        )
    }
}

/// Options of the admin commands.
struct AdminOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The organisation directory (the log and pending entries).", valueName: "dir"))
    var org: String?

    @Option(name: .long, help: ArgumentHelp(
        "The directory with your admin keys (default: the organisation directory).", valueName: "dir"))
    var key: String?

    @Option(name: .long, help: ArgumentHelp(
        "Read the key's passphrase from the first line of this file (mode 0600) instead of asking.", valueName: "file"))
    var passphraseFile: String?

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func organisation() throws(ClientError) -> OrganisationDirectory {
        guard let org else { throw ClientError.usage("missing-org", "give the organisation directory with --org DIR") }
        return OrganisationDirectory(path: org)
    }

    func keyDirectory() throws(ClientError) -> KeyDirectory {
        if let key { return KeyDirectory(path: key) }
        return try organisation().defaultKeys
    }

    /// Unlocks this admin's signing key.
    func unlockAdmin() throws(ClientError) -> AdminKeys {
        let file = try keyDirectory().adminKey
        _ = try file.inspect()
        return try Passphrases.unlocking(file: passphraseFile, prompt: "Passphrase for \(file.path): ") { (passphrase) throws(ClientError) in
            try file.unlock(passphrase: passphrase).payload
        }
    }
}

/// The shape shared by commands that make one entry: propose it, sign it, and append it
/// or leave it pending.
struct SubmissionOptions: ParsableArguments {
    @Flag(name: .long, help: "Write the entry as pending for co-signing even if your signature would suffice.")
    var propose = false
}

/// What a command that made or signed an entry prints.
struct EntryOutcomeReport: Encodable {
    let sequence: UInt64
    let summary: String
    let hash: String
    let appended: Bool
    let signatures: Int
    let signaturesNeeded: Int
    let pending: String?

    init(_ outcome: AdminWorkflow.Outcome) {
        sequence = outcome.entry.sequence
        summary = outcome.entry.body.summary
        hash = outcome.entry.hash.hex
        appended = outcome.appended
        signatures = outcome.entry.signatures.count
        signaturesNeeded = outcome.signaturesNeeded
        pending = outcome.pendingPath
    }

    func print(json: Bool, organisation: String?) {
        if json {
            printJSON(self)
            return
        }
        if appended {
            Swift.print("Appended entry \(sequence) (\(summary)), hash \(hash.prefix(16))….")
        } else {
            Swift.print("Entry \(sequence) (\(summary)) has \(signatures) signature(s) and needs \(signaturesNeeded) more.")
            Swift.print("Pending entry written to \(pending ?? "?").")
            Swift.print("Other admins co-sign it with: valise admin sign --key THEIR-KEY-DIR \(pending ?? "PENDING")\(organisation.map { " --org \($0)" } ?? "")")
        }
    }
}

/// Runs a submission: unlock, build the body, submit, print.
func submitEntry(
    _ options: AdminOptions, _ submission: SubmissionOptions,
    body: (OrganisationDirectory, DirectoryState) throws(ClientError) -> EntryBody
) throws {
    let (outcome, org) = try reportingErrors { () throws(ClientError) -> (AdminWorkflow.Outcome, String) in
        let organisation = try options.organisation()
        let verifier = try organisation.load(now: Environment.now()).verifier
        let entryBody = try body(organisation, verifier.state!)
        try AdminWorkflow.check(entryBody, after: verifier, now: Environment.now())
        let admin = try options.unlockAdmin()
        let outcome = try AdminWorkflow(organisation: organisation)
            .submit(entryBody, signer: admin, propose: submission.propose, now: Environment.now())
        return (outcome, organisation.path)
    }
    EntryOutcomeReport(outcome).print(json: options.json, organisation: org)
}
