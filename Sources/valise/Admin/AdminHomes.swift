import ArgumentParser
import ValiseClient
import ValiseDirectory

struct AdminMove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move",
        abstract: "Move a member to another home relay.",
        discussion: """
            A member's devices connect only to their home relay. After the move, their old \
            home passes on what it holds for them, and their devices follow once they have \
            seen the signed entry. A member enrolled without --home-relay is homed at the \
            default relay (the first relay added).
            """
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var submission: SubmissionOptions

    @Argument(help: ArgumentHelp("The member, name@mission.", valueName: "member"))
    var member: String

    @Option(name: .long, help: ArgumentHelp("The relay that becomes the member's home.", valueName: "name"))
    var homeRelay: String

    func run() throws {
        try submitEntry(options, submission) { (_, state) throws(ClientError) -> EntryBody in
            let name = try MemberName.argument(member)
            guard let current = state.members[name], current.isActive else {
                throw ClientError.usage("unknown-member", "\(name) is not an active member")
            }
            try HomeRelayArgument.check(homeRelay, in: state)
            guard state.homeRelay(of: name)?.name != homeRelay else {
                throw ClientError.usage("already-home", "\(name) is already homed at relay \(homeRelay)")
            }
            return .move(member: name, home: homeRelay)
        }
    }
}

struct AdminSetRelayAddresses: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-relay-addresses",
        abstract: "Replace a relay's list of addresses (several nodes of one relay).",
        discussion: """
            Devices and other relays try the addresses in the order given, and use the first \
            that answers. Every address must reach the same relay (the same keys). Give 1 to \
            \(RelayRecord.maximumAddresses) addresses; the list replaces the one in the directory.
            """
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var submission: SubmissionOptions

    @Option(name: .long, help: ArgumentHelp("The relay's name.", valueName: "name"))
    var name: String

    @Option(name: .long, help: ArgumentHelp("An address, in the order to try (repeat).", valueName: "host:port"))
    var address: [String]

    func validate() throws {
        guard (1...RelayRecord.maximumAddresses).contains(address.count) else {
            throw ValidationError("give 1 to \(RelayRecord.maximumAddresses) addresses with --address")
        }
    }

    func run() throws {
        try submitEntry(options, submission) { (_, state) throws(ClientError) -> EntryBody in
            try HomeRelayArgument.check(name, in: state)
            return .setRelayAddresses(name: name, addresses: address)
        }
    }
}

/// A relay name given on the command line, checked against the directory before anyone is
/// asked for a passphrase or signs.
enum HomeRelayArgument {
    static func check(_ name: String, in state: DirectoryState) throws(ClientError) {
        guard state.relays[name] == nil else { return }
        let listed = state.relays.keys.sorted()
        throw ClientError.usage(
            "unknown-relay",
            listed.isEmpty
                ? "the directory lists no relay named \(name) (it lists none: add one with valise admin add-relay)"
                : "the directory lists no relay named \(name) (relays: \(listed.joined(separator: ", ")))")
    }
}
