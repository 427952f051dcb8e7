import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

/// Options of the commands that talk to a relay on an admin's behalf.
struct AdminRelayOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The relay, by its name in the directory.", valueName: "name"))
    var relay: String

    @Option(name: .long, help: ArgumentHelp("Reach it at this address instead of the directory's (the key stays the directory's).", valueName: "host:port"))
    var relayAddress: String?
}

struct AdminPublish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Send the relay the directory entries (and checkpoint) it does not have yet.",
        discussion: """
            Connects with your admin transport key, sends the entries of the organisation's \
            log that the relay lacks, and returns once the relay has verified and stored \
            them. A relay that has entries your log lacks is refused: run 'valise admin \
            pull' first.
            """
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var relayOptions: AdminRelayOptions

    func run() async throws {
        let (sent, count, relay) = try await reportingErrorsAsync { () async throws(ClientError) -> (Int, Int, String) in
            let organisation = try options.organisation()
            let now = Environment.now()
            let (entries, verifier) = try organisation.load(now: now)
            let target = try DirectorySync.target(in: verifier.state!, name: relayOptions.relay, address: relayOptions.relayAddress)
            let admin = try options.unlockAdmin()
            let checkpoint = try organisation.currentCheckpoint(against: verifier, now: now)
            return try await DirectorySync.withRelay(target, clientKey: admin.transport) { (client, welcome) throws(ClientError) in
                let relayCount = welcome.count
                guard relayCount <= entries.count else {
                    throw ClientError.usage(
                        "relay-ahead",
                        "the relay has \(relayCount) entries, this log \(entries.count): run valise admin pull --org \(organisation.path) --relay \(target.relay.name) first")
                }
                // The relay's head must be our entry at that position: else one of us forked.
                if relayCount > 0 && welcome.head != verifier.hashes[relayCount - 1].bytes {
                    throw ClientError(
                        kind: .verification, code: DirectoryError.Rule.fork.rawValue,
                        message: "FORK: the relay's entry \(relayCount - 1) differs from this log's; do not publish, and report this to the other administrators")
                }
                let missing = Array(entries[relayCount...])
                let (count, _) = try await DirectorySync.publish(client, entries: missing, checkpoint: checkpoint)
                return (missing.count, count, target.relay.name)
            }
        }
        if options.json {
            printJSON(["relay": relay, "sent": "\(sent)", "relayEntries": "\(count)"])
            return
        }
        print("Published \(sent) entr\(sent == 1 ? "y" : "ies") to relay \(relay); it now holds \(count).")
    }
}

struct AdminPull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Fetch the entries (and checkpoint) the relay has and this log does not.",
        discussion: "Verifies them against this log, so co-signing admins work from the current head."
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var relayOptions: AdminRelayOptions

    func run() async throws {
        let (added, relay) = try await reportingErrorsAsync { () async throws(ClientError) -> (Int, String) in
            let organisation = try options.organisation()
            let now = Environment.now()
            let (_, verifier) = try organisation.load(now: now)
            let target = try DirectorySync.target(in: verifier.state!, name: relayOptions.relay, address: relayOptions.relayAddress)
            let admin = try options.unlockAdmin()
            let fetched = try await DirectorySync.withRelay(target, clientKey: admin.transport) { (client, _) throws(ClientError) in
                try await DirectorySync.fetch(client, since: verifier.count)
            }
            let added = try organisation.merge(fetched.entries, checkpoint: fetched.checkpoint, now: now, source: "the relay's directory")
            return (added, target.relay.name)
        }
        if options.json {
            printJSON(["relay": relay, "added": "\(added)"])
            return
        }
        print("Pulled \(added) new entr\(added == 1 ? "y" : "ies") from relay \(relay).")
    }
}
