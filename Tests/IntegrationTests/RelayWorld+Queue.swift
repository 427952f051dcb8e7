import Foundation
import NIOCore
import Synchronization
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseWire

// What the queue tests need of a RelayWorld: devices connected in-process whose pushed
// deliveries are collected, a relay restart on the same directory (optionally on a faked
// clock), `valised status`, the relay's signing key, and a few system tools (faketime,
// mount) run without a shell.

/// Everything a relay pushes to one connection (Deliver, notices), in arrival order.
final class PushedMessages: Sendable {
    private let messages = Mutex<[WireRelayMessage]>([])

    func append(_ message: WireRelayMessage) { messages.withLock { $0.append(message) } }

    var all: [WireRelayMessage] { messages.withLock { $0 } }

    var deliveries: [WireDeliver] {
        all.compactMap { message in
            if case .deliver(let deliver)? = message.body { return deliver }
            return nil
        }
    }
}

/// What the relay answered a Send.
enum SendOutcome {
    case accepted(WireAccepted)
    case refused(ClientError)

    var accepted: WireAccepted? {
        if case .accepted(let accepted) = self { return accepted }
        return nil
    }

    var refusal: ClientError? {
        if case .refused(let error) = self { return error }
        return nil
    }

    /// Whether the relay refused with `code` (RelayClient names it `relay-<code>`).
    func isRefused(_ code: WireErrorCode) -> Bool { refusal?.code == "relay-\(code)" }
}

/// A device (or admin key) connected to the relay in this process.
final class QueueDevice: Sendable {
    let client: RelayClient
    let welcome: WireWelcome
    let pushed = PushedMessages()
    private let drain: Task<Void, Never>

    /// Connects to the world's relay, or to another relay process on `port` (same keys).
    init(world: RelayWorld, key: AgreementPrivateKey, port: Int? = nil) async throws {
        (client, welcome) = try await RelayClient.connect(
            host: "127.0.0.1", port: port ?? world.relay.port, clientKey: key, relayKey: try world.relayKey())
        let (stream, pushed) = (client.unsolicited, pushed)
        drain = Task { for await message in stream { pushed.append(message) } }
    }

    convenience init(world: RelayWorld, member: String, port: Int? = nil) async throws {
        try await self.init(world: world, key: try world.transportKey(member), port: port)
    }

    deinit { drain.cancel() }

    func send(
        _ id: [UInt8], to recipient: String, precedence: WirePrecedence = .routine, ttl: WireTTLClass = .default,
        envelope: [UInt8] = Array("sealed".utf8)
    ) async -> SendOutcome {
        var send = WireSend()
        send.id = Data(id)
        send.recipient = recipient
        send.precedence = precedence
        send.ttl = ttl
        send.envelope = Data(envelope)
        do {
            let answer = try await client.request(.send(send))
            guard case .accepted(let accepted)? = answer.body else {
                return .refused(ClientError(kind: .failure, code: "unexpected", message: "not Accepted: \(answer)"))
            }
            return .accepted(accepted)
        } catch {
            return .refused(error)
        }
    }

    /// Sends and requires Accepted (not a duplicate).
    @discardableResult
    func sendAccepted(
        _ id: [UInt8], to recipient: String, precedence: WirePrecedence = .routine, ttl: WireTTLClass = .default,
        envelope: [UInt8] = Array("sealed".utf8), sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> WireAccepted {
        let outcome = await send(id, to: recipient, precedence: precedence, ttl: ttl, envelope: envelope)
        let accepted = try #require(outcome.accepted, "send \(Hex.encode(id)) refused: \(String(describing: outcome.refusal))", sourceLocation: sourceLocation)
        #expect(accepted.id == Data(id) && !accepted.duplicate, sourceLocation: sourceLocation)
        return accepted
    }

    /// Starts delivery (Fetch has no answer); 0 asks for the relay's window.
    func fetch(window: UInt32 = 0) async throws {
        var fetch = WireFetch()
        fetch.window = window
        try await client.post(.fetch(fetch))
        // A round trip: the relay handles a connection's messages in order, so once the Pong
        // is here the Fetch has registered this connection for pushed deliveries.
        _ = try await client.request(.ping(WirePing()))
    }

    func ack(_ ids: [Data]) async throws {
        var ack = WireAck()
        ack.ids = ids
        try await client.post(.ack(ack))
    }

    func status(of ids: [[UInt8]], nonce: [UInt8]) async throws(ClientError) -> WireStatus {
        var query = WireStatusQuery()
        query.ids = ids.map { Data($0) }
        query.nonce = Data(nonce)
        let answer = try await client.request(.statusQuery(query))
        guard case .status(let status)? = answer.body else {
            throw ClientError(kind: .failure, code: "unexpected", message: "not a Status: \(answer)")
        }
        return status
    }

    var deliveries: [WireDeliver] { pushed.deliveries }

    /// Waits (bounded) until at least `count` deliveries arrived, and returns them all.
    func deliveries(atLeast count: Int, within seconds: Double = 10) async -> [WireDeliver] {
        let deadline = Date().addingTimeInterval(seconds)
        while pushed.deliveries.count < count && Date() < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return pushed.deliveries
    }

    /// Waits for exactly `count` deliveries: at least that many (bounded), then a quiet
    /// moment in which no further one may arrive. A relay that sends more is caught as long
    /// as the extra one comes within the quiet moment, which on loopback it does.
    func deliveries(exactly count: Int, within seconds: Double = 10, quiet: Double = 0.4) async -> [WireDeliver] {
        _ = await deliveries(atLeast: count, within: seconds)
        try? await Task.sleep(for: .seconds(quiet))
        return pushed.deliveries
    }

    func close() async { await client.close() }
}

/// Ids and names for tests.
enum QueueFixture {
    /// A fresh random message id (16 bytes).
    static func id() -> [UInt8] { (0..<16).map { _ in UInt8.random(in: 0...255) } }

    static func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255) } }

    static func hex(_ data: Data) -> String { Hex.encode(Array(data)) }
}

extension RelayWorld {
    /// Stops the relay (SIGTERM, by pid) and starts it again on the same directory, with a
    /// new log file `logName`; clients reach it on its new port with the same key.
    func restartRelay(logName: String, environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(relay.stop() == 0, "the relay did not stop cleanly:\n\(relay.log)", sourceLocation: sourceLocation)
        relay = try RelayProcess(directory: path("relay"), logPath: path(logName), environment: environment)
    }

    /// `valised status --dir relay --json`, read from the store (works while it runs).
    func queueStatus(directory: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let result = try ValiseCLI.run(["status", "--dir", directory ?? path("relay"), "--json"], program: "valised")
        #expect(result.status == 0, "valised status: \(result.stderr)", sourceLocation: sourceLocation)
        return try json(result)
    }

    /// How many envelopes the store holds, and how many ids it remembers in `state`.
    func queuedEnvelopes() throws -> Int { try queueStatus()["envelopes"] as? Int ?? -1 }

    func remembered(_ state: String) throws -> Int {
        (try queueStatus()["remembered"] as? [String: Any])?[state] as? Int ?? -1
    }

    /// Polls `valised status` (bounded) until `condition` holds of it; a failure shows the
    /// last status read.
    func expectStatus(
        _ failure: String, directory: String? = nil, within seconds: Double = 10, sourceLocation: SourceLocation = #_sourceLocation,
        _ condition: ([String: Any]) -> Bool
    ) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        var status = try queueStatus(directory: directory, sourceLocation: sourceLocation)
        while !condition(status) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            status = try queueStatus(directory: directory, sourceLocation: sourceLocation)
        }
        #expect(condition(status), "\(failure): \(status)", sourceLocation: sourceLocation)
    }

    /// The relay's Ed25519 signing key and Noise key, as the directory a client holds lists them.
    func relaySigningKey() throws -> (signing: SigningPublicKey, noise: AgreementPublicKey) {
        let state = try PinnedOrganisation(home: ValiseHome(path: path("alice@jakarta"))).load(now: UInt64(Date().timeIntervalSince1970)).state
        let relay = try #require(state.relays["hq"])
        return (relay.signingKey, relay.noiseKey)
    }

    /// The admin's transport key (it may fetch and publish the directory only).
    func adminTransportKey() throws -> AgreementPrivateKey {
        let file = OrganisationDirectory(path: path("org")).defaultKeys.adminKey
        return try file.unlock(passphrase: SecretBytes(copying: Array(passphrase.utf8))).payload.transport
    }

    /// Log lines of the current relay process containing every one of `parts`.
    func relayLogLines(containing parts: String...) -> [Substring] {
        relay.log.split(separator: "\n").filter { line in parts.allSatisfy { line.contains($0) } }
    }
}

/// System programs (mount, cp) run directly, never through a shell.
enum SystemTool {
    /// Runs `path arguments` with stdin from /dev/null, bounded by `timeout` seconds.
    static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 30) throws -> ValiseCLI.Result {
        try ValiseCLI.run(path: path, arguments, environment: environment, timeout: timeout)
    }
}

/// `valised run` on 127.0.0.1 under libfaketime, its wall clock moved by `offset` (faketime's
/// -f syntax, e.g. "+2h") and its monotonic clock left alone (FAKETIME_DONT_FAKE_MONOTONIC),
/// so that NIO's timers still fire. It goes through the `faketime` wrapper: preloading
/// libfaketime directly makes its constructor call setenv before the Swift runtime finds
/// argv through `environ`, and valised then sees no arguments at all
/// (swiftlang/swift#76080); the wrapper sets FAKETIME_SHARED first, which avoids that.
/// The wrapper forks and waits, so valised is its child: it is stopped by its own pid (the
/// wrapper then exits with it), and killed with its wrapper if a test ends early.
final class FakeTimeRelay {
    static let faketime = "/usr/bin/faketime"
    let wrapper: ChildProcess
    let relayPID: pid_t
    let port: Int
    let logPath: String
    private let stdout: Int32

    /// Fails the test with a clear message when faketime is missing: the expiry tests must
    /// never pass (or skip) without it.
    static func requireInstalled(sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard FileManager.default.isExecutableFile(atPath: faketime) else {
            Issue.record("\(faketime) is not installed: the expiry tests run the relay under libfaketime (Debian: apt-get install faketime; scripts/test installs it)", sourceLocation: sourceLocation)
            throw POSIXError(.ENOENT)
        }
    }

    init(offset: String, directory: String, logPath: String, environment extra: [String: String] = [:], port requested: Int = 0,
         sourceLocation: SourceLocation = #_sourceLocation) throws {
        try Self.requireInstalled(sourceLocation: sourceLocation)
        let started = try RelayProcess.launch(
            Self.faketime, ["-f", offset, ValiseCLI.executable("valised")], directory: directory, logPath: logPath,
            environment: extra.merging(["FAKETIME_DONT_FAKE_MONOTONIC": "1"]) { $1 }, port: requested)
        (wrapper, stdout, self.logPath) = (started.child, started.stdout, logPath)
        let (found, seen) = (started.port, started.seen)
        let child = Self.child(of: wrapper.pid)
        guard let found, let child else {
            Self.killGroup(wrapper)
            close(started.stdout)
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            Issue.record("valised under faketime did not start: \(seen)\n\(log)", sourceLocation: sourceLocation)
            throw POSIXError(.ETIMEDOUT)
        }
        port = found
        relayPID = child
    }

    var address: String { "127.0.0.1:\(port)" }
    var isRunning: Bool { wrapper.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func logLines(containing parts: String...) -> [Substring] {
        log.split(separator: "\n").filter { line in parts.allSatisfy { line.contains($0) } }
    }

    /// SIGTERM to valised itself; the wrapper exits with its status (SIGKILL to both after 10 s).
    func stop() -> Int32 {
        guard wrapper.isRunning else { return -1 }
        kill(relayPID, SIGTERM)
        let status = wrapper.wait(until: Date().addingTimeInterval(10))
        return status
    }

    /// The process whose parent is `parent` (valised, under the wrapper), from /proc.
    private static func child(of parent: pid_t) -> pid_t? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // "pid (comm) state ppid …": the fields after the command name.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, pid_t(fields[1]) == parent { return pid }
        }
        return nil
    }

    /// The wrapper is a session (and group) leader: SIGKILL reaches valised too.
    private static func killGroup(_ wrapper: ChildProcess) {
        if wrapper.isRunning { kill(-wrapper.pid, SIGKILL) }
        wrapper.kill()
    }

    deinit {
        Self.killGroup(wrapper)
        close(stdout)
    }
}
