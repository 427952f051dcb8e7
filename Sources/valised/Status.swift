import ArgumentParser
import Foundation
import ValiseStore

extension Valised {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the relay's queue: envelopes by precedence, bytes, the oldest's age.",
            discussion: "Reads the store directly; it works whether or not the relay is running."
        )

        @Option(name: .long, help: ArgumentHelp("The relay's directory.", valueName: "dir"))
        var dir: String

        @Flag(name: .long, help: "Print the result as JSON.")
        var json = false

        func run() throws {
            let path = dir + "/queue.sqlite"
            guard FileManager.default.fileExists(atPath: path) else {
                FileHandle.standardError.write(Data("valised: error: no queue at \(path) (has the relay run yet?)\n".utf8))
                throw ExitCode(4)
            }
            let statistics: QueueStatistics
            do {
                statistics = try SQLiteEnvelopeStore(path: path, reserveBytes: 0, create: false).statistics(now: Clock.now())
            } catch {
                FileHandle.standardError.write(Data("valised: error: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
            var byPrecedence: [String: Int] = [:]
            for precedence in Precedence.allCases { byPrecedence[precedence.name] = statistics.countByPrecedence[precedence] ?? 0 }
            if json {
                let object: [String: Any] = [
                    "envelopes": statistics.count, "bytes": statistics.bytes, "oldestAgeSeconds": statistics.oldestAge,
                    "mailboxes": statistics.mailboxes, "byPrecedence": byPrecedence,
                    "remembered": [
                        "pending": statistics.remembered[.pending] ?? 0, "delivered": statistics.remembered[.delivered] ?? 0,
                        "expiredUndelivered": statistics.remembered[.expiredUndelivered] ?? 0, "purged": statistics.remembered[.purged] ?? 0,
                    ],
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("queued:     \(statistics.count) envelopes, \(statistics.bytes) bytes, in \(statistics.mailboxes) mailboxes")
            for precedence in Precedence.allCases.reversed() {
                print("  \(precedence.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(byPrecedence[precedence.name] ?? 0)")
            }
            print("oldest:     \(statistics.oldestAge) seconds")
            print("remembered: \(statistics.remembered[.pending] ?? 0) pending, \(statistics.remembered[.delivered] ?? 0) delivered, \(statistics.remembered[.expiredUndelivered] ?? 0) expired undelivered, \(statistics.remembered[.purged] ?? 0) purged")
        }
    }
}
