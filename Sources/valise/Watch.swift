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
                                let circular = message.circular.map { " Circular to \(MessageText.printable($0))" } ?? ""
                                print("\(message.precedenceName) from \(message.from) at \(MessageText.time(message.sentAt)) [\(MessageText.shortID(message.id))]\(circular)")
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
}

/// One JSON object on one line (for streams such as `valise watch --json`).
func printJSONLine(_ value: some Encodable) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}
