import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise {
    struct Members: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the organisation's members, from the directory this device has verified.",
            discussion: """
                One line per member: name, mission, role, home relay, fingerprint and state \
                (active or revoked), from the directory pinned on this device, as verified \
                at the last sync. Works offline; asks for no passphrase. --mission M keeps the \
                members whose mission (as enrolled) or whose name's part after the @ is M, \
                ignoring case.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Only the members of this mission.", valueName: "mission"))
        var mission: String?

        func run() throws {
            let report = try reportingErrors { () throws(ClientError) -> MembersReport in
                let home = try options.resolveHome()
                // Nothing pinned (no home even) is "nothing set up" (exit 4), as for inbox.
                let pinned = PinnedOrganisation(home: home)
                if pinned.exists { try home.checkPrivate() }
                let now = Environment.now()
                let loaded = try pinned.load(now: now)
                let directory = DirectoryReport(state: loaded.state, checkpoint: loaded.bundle.checkpoint, now: now)
                return MembersReport(directory, mission: mission)
            }
            if options.json {
                printJSON(report)
                return
            }
            for line in report.lines { print(line) }
        }
    }
}

/// `valise members`: the verified directory's members, as signal-cli's listContacts.
struct MembersReport: Encodable {
    struct Member: Encodable {
        let name: String
        let mission: String
        let role: String
        let fingerprint: String
        let homeRelay: String?
        let homeIsDefault: Bool
        /// "active" or "revoked".
        let state: String
        let revokedAt: UInt64?
        let revocationReason: String?
    }

    let organisation: String
    let members: [Member]

    init(_ directory: DirectoryReport, mission: String?) {
        organisation = directory.organisation
        let wanted = mission?.lowercased()
        members = directory.members.filter { member in
            guard let wanted else { return true }
            let namePart = member.name.split(separator: "@").last.map(String.init) ?? ""
            return member.mission.lowercased() == wanted || namePart == wanted
        }.map { member in
            Member(
                name: member.name, mission: member.mission, role: member.role, fingerprint: member.fingerprint,
                homeRelay: member.homeRelay, homeIsDefault: member.homeIsDefault, state: member.status,
                revokedAt: member.revokedAt, revocationReason: member.revocationReason)
        }
    }

    var lines: [String] {
        var lines = ["\(organisation): \(members.count) member\(members.count == 1 ? "" : "s")"]
        lines += members.map { member in
            let home = DirectoryReport.MemberEntry.homeLabel(member.homeRelay, isDefault: member.homeIsDefault)
            return [padColumn(member.name, 24), padColumn(member.mission, 24), padColumn(member.role, 12), padColumn(home, 16), member.fingerprint, "  \(member.state)"]
                .joined(separator: " ")
        }
        if members.contains(where: { $0.homeIsDefault && $0.homeRelay != nil }) {
            lines.append("(* homed at the default relay: no entry named a home)")
        }
        return lines
    }
}
