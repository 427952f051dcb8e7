import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseWire

extension ValiseLoad {
    struct Connections: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open many authenticated connections, hold them idle, then check they still answer.",
            discussion: """
                Opens --count connections with this device's key, --concurrency handshakes at a \
                time. A connection counts once the relay has admitted it (its Hello was \
                answered with Welcome). With all of them open, prints a line \
                {"event":"held",...} and holds them idle for --hold seconds (scripts/lib/\
                bench_connections.py reads the relay's memory meanwhile), then sends a Ping on \
                every one and prints one JSON line: connections, admitted, held (answered the \
                Ping), handshakes per second over the whole run, and failures by kind.
                """
        )

        @Option(help: "The device's Valise home (passphrase in $VALISE_PASSPHRASE).") var home: String
        @Option(help: "Reach the relay at HOST:PORT instead of the directory's address.") var relay: String?
        @Option(help: "How many connections.") var count = 10_000
        @Option(help: "Handshakes in progress at once.") var concurrency = 64
        @Option(help: "Seconds to hold the connections idle once all are open.") var hold = 10.0
        @Option(help: "Seconds one connection may take to be admitted, or to answer the Ping.") var timeout = 30.0
        @Option(help: "Event-loop threads for the connections.") var threads = 1

        func validate() throws {
            guard count >= 1, concurrency >= 1, threads >= 1, hold >= 0, timeout > 0 else {
                throw ValidationError("--count, --concurrency and --threads must be positive, --hold and --timeout not negative")
            }
        }

        func run() async throws {
            let device = try LoadDevice(home: home, relay: relay)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            let target = LoadTarget(
                host: device.target.host, port: device.target.port, clientKey: device.identity.transportKey,
                relayKey: device.target.relay.noiseKey, timeout: .nanoseconds(Int64(timeout * 1e9)))

            let started = DispatchTime.now().uptimeNanoseconds
            let (connections, failures) = await Self.open(count: count, concurrency: concurrency, target: target, group: group)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            let rate = Double(connections.count) / max(seconds, 1e-9)
            Self.emit(#"{"event":"held","admitted":\#(connections.count),"handshakeSeconds":\#(seconds),"handshakesPerSecond":\#(rate)}"#)

            try? await Task.sleep(for: .seconds(hold))

            // Every connection, not a sample: one still open after the hold answers its Ping.
            var answered = 0
            var pingFailures: [String: Int] = [:]
            for start in stride(from: 0, to: connections.count, by: 1024) {
                let batch = connections[start..<min(start + 1024, connections.count)]
                for future in batch.map({ $0.ping(timeout: target.timeout) }) {
                    do {
                        try await future.get()
                        answered += 1
                    } catch {
                        pingFailures[(error as? BenchConnection.Closed)?.kind ?? "io", default: 0] += 1
                    }
                }
            }
            for connection in connections { connection.close() }
            try? await group.shutdownGracefully()

            Self.emit("""
                {"event":"done","connections":\(count),"admitted":\(connections.count),"held":\(answered),\
                "handshakeSeconds":\(seconds),"handshakesPerSecond":\(rate),"concurrency":\(concurrency),\
                "holdSeconds":\(hold),"failures":\(Self.json(failures)),"pingFailures":\(Self.json(pingFailures))}
                """)
            if answered < count { throw ExitCode(3) }
        }

        /// Opens `count` connections, at most `concurrency` handshakes at a time.
        private static func open(
            count: Int, concurrency: Int, target: LoadTarget, group: any EventLoopGroup
        ) async -> ([BenchConnection], [String: Int]) {
            var connections: [BenchConnection] = []
            connections.reserveCapacity(count)
            var failures: [String: Int] = [:]
            await withTaskGroup(of: Result<BenchConnection, BenchConnection.Closed>.self) { tasks in
                var started = 0
                func startOne() {
                    started += 1
                    let eventLoop = group.next()
                    tasks.addTask { await target.open(on: eventLoop) }
                }
                while started < min(concurrency, count) { startOne() }
                for await result in tasks {
                    switch result {
                    case .success(let connection): connections.append(connection)
                    case .failure(let failure): failures[failure.kind, default: 0] += 1
                    }
                    if started < count { startOne() }
                }
            }
            return (connections, failures)
        }

        private static func json(_ counts: [String: Int]) -> String {
            "{" + counts.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        }

        /// One line on standard output, flushed at once: the benchmark script waits for it.
        private static func emit(_ line: String) {
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }
}

/// Where and as whom every connection of a run connects.
struct LoadTarget: Sendable {
    let host: String
    let port: Int
    let clientKey: AgreementPrivateKey
    let relayKey: AgreementPublicKey
    let timeout: TimeAmount

    /// One connection, admitted (its Hello answered with Welcome), or the kind of failure.
    func open(on eventLoop: any EventLoop) async -> Result<BenchConnection, BenchConnection.Closed> {
        do {
            return .success(try await BenchConnection.open(
                host: host, port: port, clientKey: clientKey, relayKey: relayKey, on: eventLoop, timeout: timeout))
        } catch let closed as BenchConnection.Closed {
            return .failure(closed)
        } catch {
            return .failure(BenchConnection.Closed(kind: "connect", reason: "\(error)"))
        }
    }
}

extension BenchConnection {
    /// Succeeds when the relay answers a Ping on this connection within `timeout`; fails
    /// with the kind `closed` if the connection had ended, else `timeout`.
    func ping(timeout: TimeAmount) -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let promise = self.eventLoop.makePromise(of: Void.self)
            guard self.closedReason == nil else {
                promise.fail(Closed(kind: "closed", reason: self.closedReason ?? ""))
                return promise.futureResult
            }
            var ping = WirePing()
            ping.data = Data([1, 2, 3, 4])
            let id = self.send(.ping(ping))
            self.onMessage = { message in
                if message.requestID == id, case .pong? = message.body { promise.succeed() }
            }
            let timer = self.eventLoop.scheduleTask(in: timeout) {
                promise.fail(Closed(kind: self.closedReason == nil ? "timeout" : "closed", reason: "no Pong in time"))
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            return promise.futureResult
        }
    }
}
