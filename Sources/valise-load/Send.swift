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
        @Option(help: "Envelopes per second at most (0: as fast as the relay answers).") var rate = 0.0

        @Option(help: "Connections, each a sender with its own share of the envelopes.") var connections = 1

        /// What one connection's sender saw.
        struct Tally: Sendable {
            var accepted = 0
            var latencies: [Double] = []
            var refusals: [String: Int] = [:]
            var finished = true

            mutating func add(_ other: Tally) {
                accepted += other.accepted
                latencies += other.latencies
                refusals.merge(other.refusals, uniquingKeysWith: +)
                finished = finished && other.finished
            }
        }

        func run() async throws {
            guard connections >= 1, concurrency >= 1, count >= 0 else { throw ValidationError("--connections, --concurrency and --count must be positive") }
            let device = try LoadDevice(home: home, relay: relay)
            let recipients = to.split(separator: ",").map(String.init)
            let deadline = Date().addingTimeInterval(timeout)
            let idLog = try log.map { try IDLog(path: $0) }
            let done = Set(log.map(IDLog.read) ?? [])
            let remaining = (0..<count).filter { !done.contains(Hex.encode(messageID(run: run, number: $0))) }
            let started = Date()
            let connections = self.connections
            var total = Tally()
            total.accepted = count - remaining.count
            let shares = (0..<connections).map { index in stride(from: index, to: remaining.count, by: connections).map { remaining[$0] } }
            await withTaskGroup(of: Tally.self) { group in
                for share in shares where !share.isEmpty {
                    group.addTask {
                        await sendAll(share, device: device, recipients: recipients, idLog: idLog, deadline: deadline,
                                      rate: rate / Double(connections))
                    }
                }
                for await tally in group { total.add(tally) }
            }
            let seconds = Date().timeIntervalSince(started)
            let latencies = total.latencies.sorted()
            func percentile(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
            print("""
                {"sent":\(count),"accepted":\(total.accepted),"connections":\(connections),"concurrency":\(concurrency),\
                "seconds":\(seconds),"perSecond":\(Double(latencies.count) / max(seconds, 1e-9)),\
                "p50ms":\(percentile(0.5)),"p99ms":\(percentile(0.99)),"refusals":\(refusalsJSON(total.refusals))}
                """)
            if total.accepted + total.refusals.values.reduce(0, +) < count { throw ExitCode(3) }
        }

        /// One sender: its own connection (made again after a loss), waves of `concurrency`
        /// requests; a wave that loses the connection is sent again with the same ids.
        private func sendAll(
            _ numbers: [Int], device: LoadDevice, recipients: [String], idLog: IDLog?, deadline: Date, rate: Double
        ) async -> Tally {
            var tally = Tally()
            var remaining = numbers
            let started = Date()
            var attempted = 0
            while !remaining.isEmpty && Date() < deadline {
                guard let client = try? await device.connect(until: deadline) else { break }
                var failedNumbers: [Int] = []
                while !remaining.isEmpty {
                    if rate > 0 {
                        let due = started.addingTimeInterval(Double(attempted) / rate)
                        if due > Date() { try? await Task.sleep(for: .seconds(due.timeIntervalSinceNow)) }
                    }
                    let wave = Array(remaining.prefix(concurrency))
                    attempted += wave.count
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
                                do {
                                    try idLog?.append(Hex.encode(messageID(run: run, number: number)))
                                } catch {
                                    FileHandle.standardError.write(Data("valise-load: cannot write the log: \(error)\n".utf8))
                                    tally.finished = false
                                    await client.close()
                                    return tally
                                }
                                tally.accepted += 1
                                tally.latencies.append(milliseconds)
                            }
                        case .failure(let error) where Self.connectionLost.contains(error.code):
                            lostConnection = true
                            failedNumbers.append(number)
                        case .failure(let error):
                            tally.refusals[error.code, default: 0] += 1
                        }
                    }
                    remaining.removeFirst(wave.count)
                    if lostConnection { break }
                }
                remaining = failedNumbers + remaining
                await client.close()
            }
            tally.finished = remaining.isEmpty
            return tally
        }

        /// Errors that say the connection went, not that the relay refused the envelope.
        static let connectionLost: Set<String> = ["relay-closed", "relay-io", "relay-timeout", "relay-handshake", "relay-unreachable", "relay-busy"]

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
