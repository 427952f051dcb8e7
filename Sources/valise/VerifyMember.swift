import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the safety number you and a colleague compare.",
            discussion: """
                Prints the safety number for your identity and the member's, as the pinned \
                directory lists it: 60 digits that you and the colleague both see, whichever \
                of you runs the command. Compare them in person or by phone; if they differ, \
                one of you is not using the key the other sees. The number changes when \
                either of you rotates keys.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: ArgumentHelp("The colleague, name@mission.", valueName: "member"))
        var member: String

        func run() throws {
            let report = try reportingErrors { () throws(ClientError) -> SafetyNumberReport in
                let other = try MemberName.argument(member)
                let home = try options.resolveHome()
                let keystore = DeviceKeystore(home: home)
                _ = try keystore.inspect()
                let state = try PinnedOrganisation(home: home).load(now: Environment.now()).state
                guard let entry = state.members[other] else {
                    throw ClientError.usage("unknown-member", "\(other) is not in the directory this device has pinned")
                }
                // A running agent's keys do, as for every other command.
                let (identity, _) = try unlockDevice(options, home: home, warnAboutWeakKeystore: false).reconciled(with: state, now: Environment.now())
                return SafetyNumberReport(identity: identity, member: entry, state: state)
            }
            for warning in report.warnings { printWarning(warning) }
            if options.json {
                printJSON(report)
                return
            }
            print("safety number with \(report.member):")
            print("  \(report.safetyNumber)")
            print("your fingerprint (\(report.you)):  \(report.yourFingerprint)")
            print("their fingerprint (\(report.member)): \(report.theirFingerprint)")
        }
    }
}

struct SafetyNumberReport: Encodable {
    let you: String
    let member: String
    let safetyNumber: String
    let yourFingerprint: String
    let theirFingerprint: String
    let warnings: [String]

    init(identity: DeviceIdentity, member: Member, state: DirectoryState) {
        you = identity.memberName.value
        self.member = member.name.value
        safetyNumber = SafetyNumber(
            (identity.memberName, identity.identityKey.publicKey), (member.name, member.identityKey)
        ).description
        yourFingerprint = identity.fingerprint.description
        theirFingerprint = member.fingerprint.description
        var warnings: [String] = []
        if case .revoked(let reason, let sequence) = member.status {
            warnings.append("\(member.name) was revoked at entry \(sequence): \(reason)")
        }
        if let mine = state.members[identity.memberName], mine.identityKey != identity.identityKey.publicKey {
            warnings.append("the directory lists other keys for you (\(identity.memberName)) than this device has")
        }
        self.warnings = warnings
    }
}
