import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseWire

extension ValiseLoad {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the relay: senders and recipients on real Noise connections, pre-sealed envelopes.",
            discussion: """
                Envelopes are random bytes of --size (the relay never opens one), made before \
                they are sent, so the figures are the relay's: transport, protocol, the \
                durable queue, delivery. Each envelope carries its send time in its first 8 \
                bytes, so a recipient in this process measures send→deliver on one clock. \
                Cases: online (recipients fetching first; each sender keeps --window sends \
                un-answered; ends when every envelope was delivered and acknowledged), \
                offline (store --count with nobody fetching, then the recipients drain \
                them), latency (one sender, one send at a time: Send→Accepted, the durable \
                round trip). Prints one JSON line; exits 3 if anything was refused or lost.
                """
        )

        enum Case: String, ExpressibleByArgument, CaseIterable { case online, offline, latency }

        @Option(name: .customLong("case"), help: "online, offline or latency.") var benchCase: Case
        @Option(name: .customLong("sender"), help: "A sender device's Valise home (repeat for more).") var senders: [String]
        @Option(name: .customLong("recipient"), help: "A recipient device's Valise home (repeat for more).") var recipients: [String] = []
        @Option(help: "Sends each sender keeps un-answered.") var window = 64
        @Option(help: "Envelopes in all.") var count = 20_000
        @Option(help: "Envelope size in bytes (at least 8).") var size = 256
        @Option(help: "Delivery window each recipient asks for (0: the relay's maximum).") var fetchWindow = 0
        @Option(help: "Reach the relay at HOST:PORT instead of the directory's address.") var relay: String?
        @Option(help: "Event-loop threads.") var threads = 2
        @Option(help: "Give up after this many seconds.") var timeout = 300.0

        func run() async throws {
            guard size >= 8, count >= 1, window >= 1, !senders.isEmpty, threads >= 1 else {
                throw ValidationError("--size must be at least 8; --count, --window and --threads positive; at least one --sender")
            }
            guard benchCase == .latency || !recipients.isEmpty else { throw ValidationError("--recipient is needed for \(benchCase.rawValue)") }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            do {
                print(try await measure(group: group))
                try? await group.shutdownGracefully()
            } catch {
                try? await group.shutdownGracefully()
                FileHandle.standardError.write(Data("valise-load bench: \(error)\n".utf8))
                throw ExitCode(3)
            }
        }

        private func measure(group: MultiThreadedEventLoopGroup) async throws -> String {
            let sendingDevices = try senders.map { try LoadDevice(home: $0, relay: relay) }
            let receivingDevices = try recipients.map { try LoadDevice(home: $0, relay: relay) }
            let names = receivingDevices.map(\.identity.memberName.value)
            let result: String
            switch benchCase {
            case .online:
                let recipientDrivers = try await connectRecipients(receivingDevices, group: group)
                let senderDrivers = try await connectSenders(sendingDevices, to: names, window: window, group: group)
                let started = Self.now()
                for driver in recipientDrivers { driver.fetch(window: fetchWindow) }
                for driver in senderDrivers { driver.start() }
                let finished = try await waitForDeliveries(recipientDrivers, senders: senderDrivers)
                let seconds = Double(finished - started) / 1e9
                let delivered = try await Self.merge(recipientDrivers.map { driver in driver.loop.submit { driver.latencies } })
                let accepted = try await Self.merge(senderDrivers.map { driver in driver.loop.submit { driver.latencies } })
                result = json([
                    "rate": Double(count) / seconds, "seconds": seconds,
                    "p50ms": Self.milliseconds(delivered, 50), "p99ms": Self.milliseconds(delivered, 99), "p999ms": Self.milliseconds(delivered, 99.9),
                    "acceptP50ms": Self.milliseconds(accepted, 50), "acceptP99ms": Self.milliseconds(accepted, 99),
                ])
                close(senderDrivers.map(\.connection) + recipientDrivers.map(\.connection))
            case .offline:
                let senderDrivers = try await connectSenders(sendingDevices, to: names, window: window, group: group)
                let started = Self.now()
                for driver in senderDrivers { driver.start() }
                let stored = try await waitForAccepts(senderDrivers)
                close(senderDrivers.map(\.connection))
                let recipientDrivers = try await connectRecipients(receivingDevices, group: group)
                let draining = Self.now()
                for driver in recipientDrivers { driver.fetch(window: fetchWindow) }
                let drained = try await waitForDeliveries(recipientDrivers, senders: [])
                let (storeSeconds, drainSeconds) = (Double(stored - started) / 1e9, Double(drained - draining) / 1e9)
                result = json([
                    "storeRate": Double(count) / storeSeconds, "storeSeconds": storeSeconds,
                    "drainRate": Double(count) / drainSeconds, "drainSeconds": drainSeconds,
                ])
                close(recipientDrivers.map(\.connection))
            case .latency:
                let senderDrivers = try await connectSenders(Array(sendingDevices.prefix(1)), to: names.isEmpty ? [sendingDevices[0].identity.memberName.value] : names, window: 1, group: group)
                let started = Self.now()
                senderDrivers[0].start()
                let finished = try await waitForAccepts(senderDrivers)
                let seconds = Double(finished - started) / 1e9
                let accepted = try await Self.merge(senderDrivers.map { driver in driver.loop.submit { driver.latencies } })
                result = json([
                    "rate": Double(count) / seconds, "seconds": seconds,
                    "p50ms": Self.milliseconds(accepted, 50), "p99ms": Self.milliseconds(accepted, 99), "p999ms": Self.milliseconds(accepted, 99.9),
                ])
                close(senderDrivers.map(\.connection))
            }
            return result
        }

        // MARK: Setting up

        private func connectSenders(_ devices: [LoadDevice], to names: [String], window: Int, group: MultiThreadedEventLoopGroup) async throws -> [SenderDriver] {
            let run = Random.bytes(count: 8)
            let filler = Random.bytes(count: size)
            var drivers: [SenderDriver] = []
            for (index, device) in devices.enumerated() {
                let share = count / devices.count + (index < count % devices.count ? 1 : 0)
                let connection = try await open(device, group: group)
                drivers.append(SenderDriver(
                    connection: connection, index: index, count: share, window: window, recipients: names, run: run, filler: filler))
            }
            return drivers
        }

        private func connectRecipients(_ devices: [LoadDevice], group: MultiThreadedEventLoopGroup) async throws -> [RecipientDriver] {
            let progress = Progress(target: count, eventLoop: group.next())
            var drivers: [RecipientDriver] = []
            for device in devices {
                drivers.append(RecipientDriver(connection: try await open(device, group: group), progress: progress))
            }
            return drivers
        }

        private func open(_ device: LoadDevice, group: MultiThreadedEventLoopGroup) async throws -> BenchConnection {
            try await BenchConnection.open(
                host: device.target.host, port: device.target.port, clientKey: device.identity.transportKey,
                relayKey: device.target.relay.noiseKey, on: group.next())
        }

        // MARK: Waiting

        /// When the last sender had every envelope accepted (nanoseconds, monotonic).
        private func waitForAccepts(_ drivers: [SenderDriver]) async throws -> UInt64 {
            var last: UInt64 = 0
            for driver in drivers { last = max(last, try await bounded(driver.done.futureResult, on: driver.loop)) }
            return last
        }

        /// When the recipients had acknowledged `count` envelopes.
        private func waitForDeliveries(_ drivers: [RecipientDriver], senders: [SenderDriver]) async throws -> UInt64 {
            let progress = drivers[0].progress
            // A sender that failed ends the wait at once, with its reason.
            for sender in senders { sender.done.futureResult.whenFailure { progress.fail($0) } }
            let finished = try await bounded(progress.done.futureResult, on: progress.eventLoop)
            let duplicates = try await drivers.asyncSum { driver in try await driver.loop.submit { driver.duplicates }.get() }
            guard duplicates == 0 else { throw BenchFailure("\(duplicates) envelopes were delivered twice") }
            return finished
        }

        private func bounded(_ future: EventLoopFuture<UInt64>, on loop: any EventLoop) async throws -> UInt64 {
            let promise = loop.makePromise(of: UInt64.self)
            let timer = loop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
                promise.fail(BenchFailure("did not finish within \(timeout) s"))
            }
            future.cascade(to: promise)
            defer { timer.cancel() }
            return try await promise.futureResult.get()
        }

        private func close(_ connections: [BenchConnection]) {
            for connection in connections { connection.close() }
        }

        // MARK: Reporting

        private func json(_ figures: [String: Double]) -> String {
            var fields: [String] = [
                "\"case\":\"\(benchCase.rawValue)\"", "\"window\":\(benchCase == .latency ? 1 : window)",
                "\"senders\":\(benchCase == .latency ? 1 : senders.count)", "\"recipients\":\(recipients.count)",
                "\"messages\":\(count)", "\"size\":\(size)",
            ]
            for (key, value) in figures.sorted(by: { $0.key < $1.key }) {
                fields.append("\"\(key)\":\(value.isFinite ? String(format: "%.4f", value) : "null")")
            }
            return "{" + fields.joined(separator: ",") + "}"
        }

        static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

        static func milliseconds(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double {
            Double(histogram.valueAtPercentile(percentile)) / 1000
        }

        static func merge(_ futures: [EventLoopFuture<Histogram<UInt64>>]) async throws -> Histogram<UInt64> {
            var total = LatencyHistogram.make()
            for future in futures { total.add(try await future.get()) }
            return total
        }
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum LatencyHistogram {
    /// Microseconds, from 1 µs to 10 minutes, three significant digits.
    static func make() -> Histogram<UInt64> { Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three) }

    static func record(_ histogram: inout Histogram<UInt64>, since start: UInt64, now: UInt64) {
        _ = histogram.record(min(600_000_000, max(1, (now &- start) / 1000)))
    }
}

/// Deliveries acknowledged by all recipients together; fulfils `done` (with the time) when
/// they reach the target.
final class Progress: Sendable {
    let target: Int
    let eventLoop: any EventLoop
    let done: EventLoopPromise<UInt64>
    private let acknowledged = Atomic<Int>(0)

    init(target: Int, eventLoop: any EventLoop) {
        self.target = target
        self.eventLoop = eventLoop
        done = eventLoop.makePromise()
    }

    func add(_ count: Int) {
        let (_, total) = acknowledged.add(count, ordering: .relaxed)
        if total >= target && total - count < target { done.succeed(ValiseLoad.Bench.now()) }
    }

    func fail(_ error: any Error) { done.fail(error) }
}

/// One sender: keeps `window` sends un-answered until its share is accepted.
final class SenderDriver: @unchecked Sendable {
    let connection: BenchConnection
    let done: EventLoopPromise<UInt64>
    var loop: any EventLoop { connection.eventLoop }
    private let index: UInt32
    private let count: Int
    private let window: Int
    private let recipients: [String]
    private let run: [UInt8]
    private var envelope: [UInt8]
    private var sent = 0
    private var accepted = 0
    private var sentAt: [UInt64: UInt64] = [:]
    /// Send → Accepted, in microseconds.
    var latencies = LatencyHistogram.make()

    init(connection: BenchConnection, index: Int, count: Int, window: Int, recipients: [String], run: [UInt8], filler: [UInt8]) {
        self.connection = connection
        self.index = UInt32(index)
        self.count = count
        self.window = window
        self.recipients = recipients
        self.run = run
        self.envelope = filler
        done = connection.eventLoop.makePromise()
        connection.onMessage = { [weak self] message in self?.handle(message) }
    }

    func start() {
        loop.execute { [self] in
            if count == 0 { done.succeed(ValiseLoad.Bench.now()) }
            for _ in 0..<min(window, count) { sendNext() }
        }
    }

    private func sendNext() {
        let number = sent
        sent += 1
        var send = WireSend()
        var id = run
        withUnsafeBytes(of: index.bigEndian) { id += $0 }
        withUnsafeBytes(of: UInt32(number).bigEndian) { id += $0 }
        send.id = Data(id)
        send.recipient = recipients[(Int(index) + number) % recipients.count]
        let time = ValiseLoad.Bench.now()
        withUnsafeBytes(of: time.bigEndian) { envelope.replaceSubrange(0..<8, with: $0) }
        send.envelope = Data(envelope)
        sentAt[connection.send(.send(send))] = time
    }

    private func handle(_ message: WireRelayMessage) {
        switch message.body {
        case .accepted:
            guard let time = sentAt.removeValue(forKey: message.requestID) else { return }
            LatencyHistogram.record(&latencies, since: time, now: ValiseLoad.Bench.now())
            accepted += 1
            if sent < count { sendNext() }
            if accepted == count { done.succeed(ValiseLoad.Bench.now()) }
        case .error(let error):
            done.fail(BenchFailure("the relay refused a send: \(error.message)"))
            connection.close()
        default:
            break
        }
    }
}

/// One recipient: fetches its mailbox and acknowledges every delivery at the end of the read
/// batch it came in.
final class RecipientDriver: @unchecked Sendable {
    let connection: BenchConnection
    let progress: Progress
    var loop: any EventLoop { connection.eventLoop }
    private var toAcknowledge: [Data] = []
    private var seen = Set<Data>()
    private(set) var duplicates = 0
    /// Send → Deliver, in microseconds.
    var latencies = LatencyHistogram.make()

    init(connection: BenchConnection, progress: Progress) {
        self.connection = connection
        self.progress = progress
        connection.onMessage = { [weak self] message in self?.handle(message) }
        connection.onReadComplete = { [weak self] in self?.acknowledge() }
    }

    func fetch(window: Int) {
        loop.execute { [self] in
            var fetch = WireFetch()
            fetch.window = UInt32(window)
            connection.send(.fetch(fetch))
        }
    }

    private func handle(_ message: WireRelayMessage) {
        switch message.body {
        case .deliver(let deliver):
            let sentAt = deliver.envelope.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            LatencyHistogram.record(&latencies, since: sentAt, now: ValiseLoad.Bench.now())
            if !seen.insert(deliver.id).inserted { duplicates += 1 }
            toAcknowledge.append(deliver.id)
        case .error(let error):
            progress.fail(BenchFailure("the relay sent an error to a recipient: \(error.message)"))
        default:
            break
        }
    }

    private func acknowledge() {
        guard !toAcknowledge.isEmpty else { return }
        var ack = WireAck()
        ack.ids = toAcknowledge
        connection.send(.ack(ack))
        progress.add(toAcknowledge.count)
        toAcknowledge.removeAll(keepingCapacity: true)
    }
}

extension Array {
    func asyncSum(_ value: (Element) async throws -> Int) async rethrows -> Int {
        var total = 0
        for element in self { total += try await value(element) }
        return total
    }
}
