import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise {
    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exchange everything with this device's home relay: the directory, prekeys, the outbox, the mailbox, receipts and statuses.",
            discussion: """
                In order: connects to this device's home relay as the pinned directory names \
                it, trying its addresses in turn (the handshake proves the relay holds the \
                key the directory lists); fetches the directory entries and the newest \
                checkpoint this device lacks, verifies and pins them, and prints the head, \
                warning when the checkpoint is older than the organisation's warning bound; \
                publishes this device's prekeys (new signed, envelope and last-resort ML-KEM \
                prekeys weekly, one-time prekeys topped up to 100 when fewer than 25 are \
                left); sends what waits in the outbox; fetches the mailbox until it is empty, \
                storing each message before the relay may delete it; sends the delivery \
                receipts that are due; and asks the relay's signed status of sent messages \
                without a receipt. Prints one line per new message, receipt, expiry, \
                undeliverable or forwarded message, then the mailbox and outbox counts.

                A relay that is not this device's home (after an administrator moved the \
                member) is asked only for the directory; when the verified directory names \
                another home relay, sync says so and continues there. Envelopes that fail a \
                check are reported on stderr, never shown, and acknowledged. When the \
                directory shows this device revoked, sync wipes its keys and says so. \
                --relay HOST:PORT reaches the home relay at another address (its key is \
                still the directory's); --relay-name NAME connects to another relay of the \
                directory. Exit statuses: 5 refused or revoked, 6 unreachable, 7 busy, 8 \
                another protocol version (docs/CLI.md); a failure says how many messages \
                wait in the outbox for the next sync.
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
