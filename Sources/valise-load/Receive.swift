import ArgumentParser
import Foundation
import NIOCore
import ValiseClient
import ValiseCrypto
import ValiseWire

extension ValiseLoad {
    struct Receive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch this device's mailbox; log each new id (fsynced) before acknowledging it.",
            discussion: """
                Like a real client, it acknowledges an envelope only after it is stored (here: \
                its id appended and flushed to --log), and drops ids it has seen before \
                (the log is re-read on start). Stops after --idle seconds without a delivery, \
                or on SIGTERM. Prints one JSON line: new, repeated (dropped by dedup), and the \
                order of precedences seen.
                """
        )

        @Option(help: "The device's Valise home (passphrase in $VALISE_PASSPHRASE).") var home: String
        @Option(help: "Where to log delivered ids.") var log: String
        @Option(help: "Reach the relay at HOST:PORT instead of the directory's address.") var relay: String?
        @Option(help: "Stop after this many seconds without a delivery.") var idle = 5.0
        @Option(help: "Stop after this many seconds in all.") var timeout = 300.0
        @Option(help: "Flow-control window to ask for (0: the relay's maximum).") var window = 0
        @Option(help: "Stop once this many new ids are logged (0: no limit).") var expect = 0

        func run() async throws {
            let device = try LoadDevice(home: home, relay: relay)
            let idLog = try IDLog(path: log)
            var seen = Set(IDLog.read(log))
            var fresh = 0
            var repeated = 0
            var precedences: [Int] = []
            let deadline = Date().addingTimeInterval(timeout)
            var lastDelivery = Date()

            outer: while Date() < deadline {
                guard let client = try? await device.connect(until: deadline) else { break }
                var fetch = WireFetch()
                fetch.window = UInt32(window)
                let stream = client.unsolicited
                try? await client.post(.fetch(fetch))
                let events = AsyncStream<WireRelayMessage?> { continuation in
                    let task = Task {
                        for await message in stream { continuation.yield(message) }
                        continuation.yield(nil)
                        continuation.finish()
                    }
                    let ticker = Task {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .milliseconds(200))
                            continuation.yield(WireRelayMessage())
                        }
                    }
                    continuation.onTermination = { _ in
                        task.cancel()
                        ticker.cancel()
                    }
                }
                for await event in events {
                    guard let message = event else { break }
                    if case .deliver(let deliver) = message.body {
                        let id = Hex.encode(Array(deliver.id))
                        if seen.contains(id) {
                            repeated += 1
                        } else {
                            try idLog.append(id)
                            seen.insert(id)
                            fresh += 1
                            precedences.append(deliver.precedence.rawValue)
                        }
                        var ack = WireAck()
                        ack.ids = [deliver.id]
                        try? await client.post(.ack(ack))
                        lastDelivery = Date()
                    }
                    if expect > 0 && fresh >= expect { await client.close(); break outer }
                    if Date().timeIntervalSince(lastDelivery) > idle { await client.close(); break outer }
                    if Date() >= deadline { break }
                }
                await client.close()
                if Date().timeIntervalSince(lastDelivery) > idle { break }
                try? await Task.sleep(for: .milliseconds(100))
            }
            print("{\"new\":\(fresh),\"repeated\":\(repeated),\"precedences\":\(precedences)}")
        }
    }
}
