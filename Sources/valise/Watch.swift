import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto
import ValiseStore

extension Valise {
    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stay connected and print messages as they arrive.",
            discussion: """
                Connects to the relay, sends what waits in the outbox, and prints each new \
                message as it arrives (stored on this computer before the relay is told it \
                may delete it). If the connection drops or the relay restarts, it \
                reconnects, waiting 1, 2, 4… up to 60 seconds between attempts. Stop it with Ctrl-C. Use 'valise agent' so \
                that it does not need the passphrase again after a reconnection.
                """
        )

        @OptionGroup var options: GlobalOptions
        @OptionGroup var relayOptions: RelayOptions

        @Flag(name: .long, help: "Print each message's text too, not only its header.")
        var text = false

        func run() async throws {
            let home = try reportingErrors { () throws(ClientError) in try options.resolveHome() }
            let unlocked = try reportingErrors { () throws(ClientError) in try unlockDevice(options, home: home) }
            var backoff: UInt64 = 1
            while true {
                do throws(ClientError) {
                    try await withRelaySync(options, relayOptions, unlocked: unlocked, now: Environment.now) { (session, sync) throws(ClientError) in
                        try await sync.uploadPrekeys(now: Environment.now())
                        try await sync.flushOutbox(now: Environment.now())
                        printNote("Watching for messages to \(session.identity.memberName) (Ctrl-C to stop).")
                        backoff = 1
                        try await sync.watch(now: Environment.now) { message in
                            if let change = message.keysChanged { printWarning(change.warning) }
                            if let note = message.directoryNote { printDirectoryNote(note) }
                            if options.json {
                                printJSONLine(InboxJSON.Message(message, withText: text))
                            } else {
                                print("\(message.precedenceName) from \(message.from) at \(MessageText.time(message.sentAt)) [\(MessageText.shortID(message.id))]")
                                if text { print(MessageText.printable(message.text)) }
                            }
                            fflush(nil)
                        }
                    }
                } catch where isUnreachable(error) {
                    printNote("valise: \(error.message); trying again in \(backoff) s")
                } catch {
                    throw report(error)
                }
                try? await Task.sleep(nanoseconds: backoff * 1_000_000_000)
                backoff = min(backoff * 2, 60)
            }
        }
    }

    struct Sent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the messages this device sent, and where each stands.",
            discussion: """
                waiting: in this device's outbox, not yet taken by the relay. accepted: the \
                relay holds it for the recipient. delivered: the recipient's device confirmed \
                it stored it (an encrypted receipt, sent after a short random delay so that \
                its timing does not link you). expired-undelivered: the relay's signed status \
                says it expired before the recipient took it. undeliverable (recipient \
                revoked), (unknown recipient) or (deleted by the operator): it will never be \
                delivered, as this device knows or the relay's signed status says. forwarded: \
                the relay handed it to the recipient's relay. 'valise sync' brings receipts \
                and statuses up to date.
                """
        )

        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let messages = try reportingErrors { () throws(ClientError) -> [SentMessage] in
                let (_, messenger) = try openOffline(options, now: Environment.now())
                defer { messenger.close() }
                return try messenger.sent()
            }
            if options.json {
                printJSON(SentJSON(messages: messages.map(SentJSON.Message.init)))
                return
            }
            guard !messages.isEmpty else {
                print("No messages sent from this device yet.")
                return
            }
            print("ID        PRECEDENCE  TO                        WRITTEN (UTC)         STATE")
            for message in messages {
                let to = message.to.padding(toLength: max(24, message.to.count), withPad: " ", startingAt: 0)
                let precedence = message.precedenceName.padding(toLength: 10, withPad: " ", startingAt: 0)
                print("\(MessageText.shortID(message.id))  \(precedence)  \(to)  \(MessageText.time(message.createdAt))  \(message.stateName)")
            }
        }
    }
}

/// `valise sent --json`: {"messages": [{"id", "to", "precedence", "sent_at", "state", "changed_at", "expires_at",
/// "reason" (undeliverable only), "forwarded_to" (forwarded only)}, …]}.
struct SentJSON: Encodable {
    struct Message: Encodable {
        let id: String
        let to: String
        let precedence: String
        let sent_at: String
        let state: String
        let changed_at: String
        let expires_at: String?
        let reason: String?
        let forwarded_to: String?

        init(_ message: SentMessage) {
            id = message.idHex
            to = message.to
            precedence = message.precedenceName
            sent_at = Timestamp.rfc3339(message.createdAt)
            state = message.stateName
            changed_at = Timestamp.rfc3339(message.changedAt)
            expires_at = message.expiresAt.map(Timestamp.rfc3339)
            // Each is set only in its own state (the outbox clears them on every change).
            reason = message.undeliverableReason?.code
            forwarded_to = message.forwardedTo
        }
    }

    let messages: [Message]
}

/// One JSON object on one line (for streams such as `valise watch --json`).
func printJSONLine(_ value: some Encodable) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}
