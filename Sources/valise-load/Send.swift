import ArgumentParser
import Foundation
import NIOCore
import ValiseClient
import ValiseCrypto
import ValiseWire

extension ValiseLoad {
    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send numbered envelopes of random bytes; log each id the relay accepted.",
            discussion: """
                Each envelope's id is derived from --run and its number, so after a lost \
                connection the same ids are sent again; the relay must never keep two copies. \
                An id goes into --log only once its Accepted arrived. Prints one JSON line: \
                how many were accepted, and latencies.
                """
        )

        @Option(help: "The device's Valise home (passphrase in $VALISE_PASSPHRASE).") var home: String
        @Option(help: "Recipient members, comma-separated; envelopes go to them in turn.") var to: String
        @Option(help: "How many envelopes.") var count: Int
        @Option(help: "A name for this run (ids derive from it).") var run: String
        @Option(help: "Where to log accepted ids.") var log: String?
        @Option(help: "Reach the relay at HOST:PORT instead of the directory's address.") var relay: String?
        @Option(help: "Envelopes in flight at once.") var concurrency = 1
        @Option(help: "Envelope size in bytes.") var size = 256
        @Option(help: "Precedence: routine, priority, immediate, flash, or mixed.") var precedence = "routine"
        @Option(help: "TTL class: default, 1h, 1d, 7d, 30d.") var ttl = "default"
        @Option(help: "Give up after this many seconds.") var timeout = 120.0

        func run() async throws {
            let device = try LoadDevice(home: home, relay: relay)
            let recipients = to.split(separator: ",").map(String.init)
            let deadline = Date().addingTimeInterval(timeout)
            let idLog = try log.map { try IDLog(path: $0) }
            let done = Set(log.map(IDLog.read) ?? [])
            var remaining = (0..<count).filter { !done.contains(Hex.encode(messageID(run: run, number: $0))) }
            var latencies: [Double] = []
            var accepted = count - remaining.count
            var refusals: [String: Int] = [:]
            let started = Date()

            while !remaining.isEmpty && Date() < deadline {
                let client: RelayClient
                do {
                    client = try await device.connect(until: deadline)
                } catch {
                    break
                }
                // Send in waves of `concurrency`; a wave that loses the connection is retried.
                var failedNumbers: [Int] = []
                while !remaining.isEmpty {
                    let wave = Array(remaining.prefix(concurrency))
                    let results = await withTaskGroup(of: (Int, Result<(WireRelayMessage, Double), ClientError>).self) { group in
                        for number in wave {
                            let send = envelope(number, recipients: recipients)
                            group.addTask {
                                let begin = DispatchTime.now().uptimeNanoseconds
                                do throws(ClientError) {
                                    let answer = try await client.request(.send(send), timeout: .seconds(30))
                                    return (number, .success((answer, Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e6)))
                                } catch {
                                    return (number, .failure(error))
                                }
                            }
                        }
                        var collected: [(Int, Result<(WireRelayMessage, Double), ClientError>)] = []
                        for await result in group { collected.append(result) }
                        return collected
                    }
                    var lostConnection = false
                    for (number, result) in results {
                        switch result {
                        case .success((let answer, let milliseconds)):
                            if case .accepted = answer.body {
                                try idLog?.append(Hex.encode(messageID(run: run, number: number)))
                                accepted += 1
                                latencies.append(milliseconds)
                            }
                        case .failure(let error) where error.code.hasPrefix("relay-closed") || error.code.hasPrefix("relay-io") || error.code.hasPrefix("relay-timeout"):
                            lostConnection = true
                            failedNumbers.append(number)
                        case .failure(let error):
                            refusals[error.code, default: 0] += 1
                        }
                    }
                    remaining.removeFirst(wave.count)
                    if lostConnection { break }
                }
                remaining = failedNumbers + remaining
                await client.close()
            }
            let seconds = Date().timeIntervalSince(started)
            latencies.sort()
            func percentile(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
            print("""
                {"sent":\(count),"accepted":\(accepted),"seconds":\(seconds),"perSecond":\(Double(latencies.count) / max(seconds, 1e-9)),\
                "p50ms":\(percentile(0.5)),"p99ms":\(percentile(0.99)),"refusals":\(refusalsJSON(refusals))}
                """)
            if accepted + refusals.values.reduce(0, +) < count { throw ExitCode(3) }
        }

        private func envelope(_ number: Int, recipients: [String]) -> WireSend {
            var send = WireSend()
            send.id = Data(messageID(run: run, number: number))
            send.recipient = recipients[number % recipients.count]
            let levels: [WirePrecedence] = [.routine, .priority, .immediate, .flash]
            switch precedence {
            case "mixed": send.precedence = levels[number % 4]
            case "priority": send.precedence = .priority
            case "immediate": send.precedence = .immediate
            case "flash": send.precedence = .flash
            default: send.precedence = .routine
            }
            send.ttl = ["1h": .hour, "1d": .day, "7d": .week, "30d": .month][ttl] ?? .default
            send.envelope = Data(Random.bytes(count: size))
            return send
        }

        private func refusalsJSON(_ refusals: [String: Int]) -> String {
            "{" + refusals.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        }
    }
}
