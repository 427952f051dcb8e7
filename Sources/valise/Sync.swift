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
        @OptionGroup var relayOptions: RelayOptions

        func run() async throws {
            let (report, messages) = try await reportingErrorsAsync { () async throws(ClientError) -> (SyncReport, MessageSync.Report) in
                let home = try options.resolveHome()
                let before = try PinnedOrganisation(home: home).load(now: Environment.now()).verifier.count
                let unlocked = try unlockDevice(options, home: home)
                do throws(ClientError) {
                    return try await steps(unlocked: unlocked, before: before)
                } catch where error.code == "device-revoked" {
                    throw error
                } catch {
                    throw OutboxNote.adding(to: error, waiting: OutboxNote.waiting(options, unlocked: unlocked) ?? 0)
                }
            }
            let lines = MessageText.describe(messages)
            if options.json {
                printJSON(report)
                return
            }
            print("Synced with relay \(report.relay): \(report.newEntries) new entr\(report.newEntries == 1 ? "y" : "ies"), \(report.entries) in all.")
            print("head:       entry \(report.entries - 1), \(report.head.prefix(16))…")
            print("checkpoint: \(report.checkpoint ?? "none yet")")
            for line in lines { print(line) }
            print("mailbox:    \(report.received) new message\(report.received == 1 ? "" : "s"), \(report.unread) unread; outbox: \(report.outboxWaiting) waiting")
        }

        private func steps(unlocked: UnlockedDevice, before: Int) async throws(ClientError) -> (SyncReport, MessageSync.Report) {
            try await withRelaySync(options, relayOptions, unlocked: unlocked, now: Environment.now) { (session, sync) throws(ClientError) -> (SyncReport, MessageSync.Report) in
                try await sync.uploadPrekeys(now: Environment.now())
                try await sync.flushOutbox(now: Environment.now())
                try await sync.fetchMailbox(now: Environment.now)
                // Receipts whose delay has passed go now; the rest wait for the next sync.
                try await sync.flushOutbox(now: Environment.now())
                try await sync.checkStatuses(now: Environment.now())
                try sync.summarize()
                let report = SyncReport(relay: sync.relayName, before: before, after: session.organisation, now: Environment.now(), messages: sync.report)
                return (report, sync.report)
            }
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
    let received: Int
    let unread: Int
    let outboxWaiting: Int
    let sent: Int
    let refused: Int
    let oneTimePrekeysOnRelay: Int?
    let oneTimeKEMPrekeysOnRelay: Int?

    init(relay: String, before: Int, after: PinnedOrganisation.Loaded, now: UInt64, messages: MessageSync.Report) {
        received = messages.received.count
        unread = messages.unread
        outboxWaiting = messages.outboxWaiting
        sent = messages.sent.count
        refused = messages.refused.count
        oneTimePrekeysOnRelay = messages.oneTimePrekeysOnRelay
        oneTimeKEMPrekeysOnRelay = messages.oneTimeKEMPrekeysOnRelay
        self.relay = relay
        entries = after.verifier.count
        newEntries = after.verifier.count - before
        head = after.state.headHash.hex
        let freshness = DirectoryFreshness(after, now: now)
        checkpointAgeSeconds = freshness.checkpointAge
        checkpoint = after.bundle.checkpoint.map { "entry \($0.sequence) at \(Timestamp.rfc3339($0.time))" }
        freshnessWarning = freshness.warning
    }
}
