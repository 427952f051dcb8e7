import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise {
    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connect to the organisation's relay and bring the directory up to date.",
            discussion: """
                Connects to the relay the pinned directory names (checking that it holds the \
                key the directory lists), fetches the entries this device does not have yet \
                and the newest checkpoint, verifies them, and prints the directory's head. \
                Warns when the newest checkpoint is older than the organisation allows. \
                --relay HOST:PORT reaches the relay at another address; its key is still the \
                one the directory names.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Reach the relay at this address instead of the directory's.", valueName: "host:port"))
        var relay: String?

        @Option(name: .long, help: ArgumentHelp("Which relay, when the directory lists several.", valueName: "name"))
        var relayName: String?

        func run() async throws {
            let report = try await reportingErrorsAsync { () async throws(ClientError) -> SyncReport in
                let home = try options.resolveHome()
                let pinned = PinnedOrganisation(home: home)
                let now = Environment.now()
                let before = try pinned.load(now: now)
                let target = try DirectorySync.target(in: before.state, name: relayName, address: relay)
                let keystore = DeviceKeystore(home: home)
                _ = try keystore.inspect()
                let passphrase = try options.passphrase(for: keystore.path)
                let (identity, _) = try keystore.unlock(passphrase: passphrase)

                let fetched = try await DirectorySync.withRelay(target, clientKey: identity.transportKey) { (client, _) throws(ClientError) in
                    try await DirectorySync.fetch(client, since: before.verifier.count)
                }
                let bundle = OrganisationBundle(entries: before.bundle.entries + fetched.entries, checkpoint: fetched.checkpoint ?? before.bundle.checkpoint)
                _ = try pinned.pin(bundle, expectedGenesis: nil, now: now, file: "the relay's directory")
                let after = try pinned.load(now: now)
                _ = try keystore.unlock(passphrase: passphrase, directory: after.state, now: now)
                return SyncReport(relay: target.relay.name, before: before.verifier.count, after: after, now: now)
            }
            if let warning = report.freshnessWarning { printWarning(warning) }
            if options.json {
                printJSON(report)
                return
            }
            print("Synced with relay \(report.relay): \(report.newEntries) new entr\(report.newEntries == 1 ? "y" : "ies"), \(report.entries) in all.")
            print("head:       entry \(report.entries - 1), \(report.head.prefix(16))…")
            print("checkpoint: \(report.checkpoint ?? "none yet")")
        }
    }
}

struct SyncReport: Encodable {
    let relay: String
    let entries: Int
    let newEntries: Int
    let head: String
    let checkpoint: String?
    let checkpointAgeSeconds: Int64?
    let freshnessWarning: String?

    init(relay: String, before: Int, after: PinnedOrganisation.Loaded, now: UInt64) {
        self.relay = relay
        entries = after.verifier.count
        newEntries = after.verifier.count - before
        head = after.state.headHash.hex
        let policy = after.state.freshness
        if let checkpoint = after.bundle.checkpoint {
            let age = Int64(clamping: now) - Int64(clamping: checkpoint.time)
            checkpointAgeSeconds = age
            self.checkpoint = "entry \(checkpoint.sequence) at \(Timestamp.rfc3339(checkpoint.time))"
            freshnessWarning = age > Int64(policy.warnAfterSeconds)
                ? "the newest checkpoint is \(age / 3600) hours old (the organisation warns after \(DurationArgument.describe(policy.warnAfterSeconds))): the relay may be showing an old directory"
                : nil
        } else {
            checkpointAgeSeconds = nil
            checkpoint = nil
            freshnessWarning = after.state.checkpointKey == nil
                ? nil
                : "the relay has no checkpoint: this device cannot tell whether the directory is current"
        }
    }
}
