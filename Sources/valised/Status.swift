import ArgumentParser
import Foundation
import ValiseRelay
import ValiseStore

extension Valised {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the relay's queue (envelopes by precedence, bytes, the oldest's age), its links to other relays with the backlog for each, its limits' counts, its open connections, the disk and the directory's newest checkpoint.",
            discussion: """
                Reads the store directly; it works whether or not the relay is running (on \
                PostgreSQL, give the relay's --config: the figures are the whole relay's, all nodes). The open \
                connections come from the running relay (over DIR/control.socket); with none \
                running, it says so. The limits' counts (refusals and held-back clients since the \
                relay started, and in the last 15 minutes) come from limits.json, and the links' \
                states from links.json, which a running relay rewrites about once a second while \
                they change. --mailboxes lists each mailbox's backlog (always in --json).
                """
        )

        @Option(name: .long, help: ArgumentHelp("The relay's directory.", valueName: "dir"))
        var dir: String

        @Option(name: .long, help: ArgumentHelp(
            "The relay's configuration file: with store.kind postgres, the queue is read from PostgreSQL.", valueName: "file"))
        var config: String?

        @Flag(name: .long, help: "Print the result as JSON.")
        var json = false

        @Flag(name: .long, help: "List each mailbox's backlog: envelopes, bytes, the oldest's age, how many are held.")
        var mailboxes = false

        func run() throws {
            let now = Clock.now()
            let queue = try StatusQueue.read(directory: dir, config: config, now: now)
            let (statistics, backlog, mailboxBacklog) = (queue.statistics, queue.backlog, queue.mailboxBacklog)
            var byPrecedence: [String: Int] = [:]
            for precedence in Precedence.allCases { byPrecedence[precedence.name] = statistics.countByPrecedence[precedence] ?? 0 }
            let limits = LimitCounters.read(directory: dir)
            var figures = StatusFigures(directory: dir, storePath: dir + "/queue.sqlite", postgres: queue.postgres, now: now)
            if let bytes = queue.postgresBytes { figures.storeBytes = bytes }
            let links = LinkStatusFile.read(directory: dir)
            // Every known limit, in a fixed order, then any the file names that this build does not know.
            let knownLimits = LimitCounters.Limit.allCases.map(\.rawValue)
            let limitNames = knownLimits + (limits?.counts.keys.sorted().filter { !knownLimits.contains($0) } ?? [])
            if json {
                var object: [String: Any] = [
                    "envelopes": statistics.count, "bytes": statistics.bytes, "oldestAgeSeconds": statistics.oldestAge,
                    "mailboxes": statistics.mailboxes, "byPrecedence": byPrecedence,
                    "remembered": [
                        "pending": statistics.remembered[.pending] ?? 0, "delivered": statistics.remembered[.delivered] ?? 0,
                        "expiredUndelivered": statistics.remembered[.expiredUndelivered] ?? 0,
                        // `purged` is the name scripts read before operator deletions joined revocations' purges.
                        "undeliverable": statistics.remembered[.undeliverable] ?? 0, "purged": statistics.remembered[.undeliverable] ?? 0,
                    ],
                ]
                if let limits {
                    object["limits"] = [
                        "since": limits.since, "updated": limits.updated, "counts": limits.counts,
                        "recent": limits.recent, "recentMinutes": limits.recentMinutes,
                    ]
                }
                if let blobs = queue.blobs {
                    object["blobs"] = ["count": blobs.count, "bytes": blobs.bytes, "forwardsWaiting": blobs.forwardsWaiting] as [String: Any]
                }
                object["relay"] = figures.relayObject
                object["disk"] = figures.diskObject
                object["store"] = figures.storeObject
                object["directory"] = figures.directoryObject
                object["mailboxBacklog"] = mailboxBacklog.map { mailbox -> [String: Any] in
                    ["mailbox": mailbox.mailbox.name, "envelopes": mailbox.count, "bytes": mailbox.bytes,
                     "oldestAgeSeconds": mailbox.oldestAge, "held": mailbox.held]
                }
                object["forwarding"] = Dictionary(uniqueKeysWithValues: backlog.map { relay, figures in
                    (relay, ["envelopes": figures.count, "bytes": figures.bytes, "oldestAgeSeconds": figures.oldestAge] as [String: Any])
                })
                if let links {
                    object["links"] = [
                        "updated": links.updated,
                        "links": links.links.map { link -> [String: Any] in
                            var entry: [String: Any] = ["relay": link.relay, "state": link.state, "address": link.address, "inFlight": link.inFlight]
                            if let success = link.lastSuccess { entry["lastSuccess"] = success }
                            if let error = link.lastError { entry["lastError"] = error }
                            return entry
                        },
                    ]
                }
                try printJSON(object)
                return
            }
            print("queued:     \(statistics.count) envelopes, \(statistics.bytes) bytes, in \(statistics.mailboxes) mailboxes")
            for precedence in Precedence.allCases.reversed() {
                print("  \(precedence.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(byPrecedence[precedence.name] ?? 0)")
            }
            print("oldest:     \(statistics.oldestAge) seconds")
            if let blobs = queue.blobs {
                print("blobs:      \(blobs.count) held, \(blobs.bytes) bytes, \(blobs.forwardsWaiting) forwards to other relays waiting")
            }
            if mailboxes { Self.printMailboxes(mailboxBacklog) }
            figures.printText()
            Self.printLinks(links, backlog: backlog)
            if let limits {
                print("limits:     since the relay started \(Self.time(limits.since)), counted \(Self.time(limits.updated))")
                for name in limitNames {
                    let recent = limits.recent[name].map { ", \($0) in the last \(limits.recentMinutes) min" } ?? ""
                    print("  \(name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(limits.counts[name] ?? 0)\(recent)")
                }
            } else {
                print("limits:     no counts yet (\(LimitCounters.fileName) is written by a running relay)")
            }
            print("remembered: \(statistics.remembered[.pending] ?? 0) pending, \(statistics.remembered[.delivered] ?? 0) delivered, \(statistics.remembered[.expiredUndelivered] ?? 0) expired undelivered, \(statistics.remembered[.undeliverable] ?? 0) undeliverable (recipient revoked or unknown, deleted by the operator, refused by a relay)")
        }

        /// One line per mailbox with envelopes, the largest backlog first.
        static func printMailboxes(_ backlog: [MailboxBacklog]) {
            print("mailboxes:  \(backlog.isEmpty ? "none with envelopes" : "\(backlog.count) with envelopes")")
            for mailbox in backlog {
                let held = mailbox.held > 0 ? ", \(mailbox.held) held" : ""
                print("  \(mailbox.mailbox.name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(mailbox.count) envelopes, \(mailbox.bytes) bytes, oldest \(mailbox.oldestAge) s\(held)")
            }
        }

        /// One line per relay link (from links.json) and per destination with a backlog.
        static func printLinks(_ links: LinkStatusFile?, backlog: [String: ForwardingBacklog]) {
            let relays = Set(backlog.keys).union(links?.links.map(\.relay) ?? []).sorted()
            guard !relays.isEmpty else { return }
            if let links {
                print("links:      as the relay wrote them \(time(links.updated))")
            } else {
                print("links:      no states (\(LinkStatusFile.fileName) is written by a running relay)")
            }
            for relay in relays {
                let link = links?.links.first { $0.relay == relay }
                let figures = backlog[relay]
                var line = "  \(relay.padding(toLength: 16, withPad: " ", startingAt: 0)) \(link?.state ?? "-")"
                if let success = link?.lastSuccess { line += ", last success \(time(success))" }
                line += ", backlog \(figures?.count ?? 0) envelopes"
                if let figures, figures.count > 0 { line += " (\(figures.bytes) bytes, oldest \(figures.oldestAge) s)" }
                if let error = link?.lastError, link?.state != "up" { line += "; last error: \(error)" }
                print(line)
            }
        }

        /// Seconds since 1970 as an ISO 8601 UTC time.
        static func time(_ seconds: UInt64) -> String {
            Date(timeIntervalSince1970: TimeInterval(seconds)).ISO8601Format()
        }
    }
}
