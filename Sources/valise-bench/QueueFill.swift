import ArgumentParser
import Foundation
import ValiseCrypto
import ValiseStore

extension ValiseBench {
    /// Fills a relay's queue file directly through the store, for the startup benchmark.
    struct FillQueue: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fill-queue",
            abstract: "Put envelopes of random bytes into a queue file (the relay must be stopped).")

        @Option(help: "The queue file (DIR/queue.sqlite of a relay).") var store: String
        @Option(help: "Recipient mailboxes (active members), comma-separated; envelopes alternate.") var mailboxes: String
        @Option(help: "How many envelopes.") var count = 1_000_000
        @Option(help: "Envelope size in bytes.") var size = 256
        @Option(help: "Envelopes per transaction.") var batch = 10_000

        func run() throws {
            let names = mailboxes.split(separator: ",").map { Mailbox(String($0)) }
            guard !names.isEmpty, count >= 0, size > 0, batch > 0 else { throw ValidationError("need mailboxes and positive sizes") }
            var limits = QueueLimits()
            limits.maximumMessagesPerMailbox = Int.max / 2
            limits.maximumBytesPerMailbox = Int.max / 2
            let store = try SQLiteEnvelopeStore(path: store, limits: limits)
            let body = Random.bytes(count: size)
            let now = UInt64(Date().timeIntervalSince1970)
            let started = Date()
            let precedences = Precedence.allCases
            var written = 0
            while written < count {
                let envelopes = (written..<min(count, written + batch)).map { number in
                    IncomingEnvelope(
                        mailbox: names[number % names.count], id: MessageID(bytes: Random.bytes(count: 16))!,
                        precedence: precedences[number % precedences.count], ttl: .month, body: body)
                }
                let outcomes = try store.accept(envelopes, now: now)
                guard outcomes.allSatisfy({ if case .accepted(_, false) = $0 { true } else { false } }) else {
                    throw ValidationError("the store refused envelopes: \(outcomes.first { if case .accepted = $0 { false } else { true } }!)")
                }
                written += envelopes.count
            }
            print("{\"case\":\"fill-queue\",\"envelopes\":\(written),\"seconds\":\(Date().timeIntervalSince(started))}")
        }
    }
}
