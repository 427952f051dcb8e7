import Foundation
import Logging
import NIOCore
import Synchronization
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
@testable import ValiseRelay
import ValiseStore
import ValiseTestSupport
import ValiseWire

/// One relay node, in this process on 127.0.0.1, on a `SharedTestStore`: an organisation of
/// one relay (hq) and two devices (alice, bob), with entries an hour old.
final class SharedRelayFixture: Sendable {
    let folder = TemporaryDirectory()
    let keys: RelayKeys
    let admin: SigningKey
    /// The admin's transport key, to connect as the admin.
    let adminTransport: AgreementPrivateKey
    let alice: Device
    let bob: Device
    let entries: [DirectoryEntry]
    let store: SharedTestStore
    let blobStore: SQLiteBlobStore?
    let server: RelayServer
    /// Where the relay listens, once it does.
    private final class Port: Sendable { let value = Mutex<Int?>(nil) }
    private let port = Port()
    private let running = Mutex<Task<Void, Never>?>(nil)

    struct Device: Sendable {
        let identity = SigningKey()
        let transport = AgreementPrivateKey()
        let name: MemberName
    }

    /// With `sibling`, another node of the same relay: the same keys and organisation, a
    /// directory and store of its own. With `blobs`, it takes attachments (blobs.sqlite in
    /// its folder); `configure` changes its configuration before it is made.
    init(sibling: SharedRelayFixture? = nil, blobs: Bool = false, configure: (inout RelayConfiguration) -> Void = { _ in }) throws {
        keys = sibling?.keys ?? RelayKeys.generate(now: WallClock.seconds())
        admin = sibling?.admin ?? SigningKey()
        adminTransport = sibling?.adminTransport ?? AgreementPrivateKey()
        alice = try sibling?.alice ?? Device(name: MemberName("alice@jakarta"))
        bob = try sibling?.bob ?? Device(name: MemberName("bob@jakarta"))
        let start = WallClock.seconds() - 3600
        let admins = AdminSet(admins: [AdminRecord(name: "admin", signingKey: admin.publicKey, transportKey: adminTransport.publicKey)], threshold: 1)
        var bodies: [EntryBody] = [
            .genesis(Genesis(organisation: "Ministry", admins: admins, freshness: .standard)),
            .addRelay(RelayPublicFile(noiseKey: keys.noise.publicKey, signingKey: keys.signing).record(name: "hq", address: "127.0.0.1:7400")),
        ]
        for device in [alice, bob] {
            let request = MemberRequest.enrollment(member: device.name, identityKey: device.identity, transportKey: device.transport.publicKey, created: start)
            bodies.append(.enroll(Enrollment(request: request, mission: "Jakarta", role: "attaché")))
        }
        var entries: [DirectoryEntry] = []
        for body in bodies {
            entries.append(Self.entry(body, after: entries, at: start + 60 * UInt64(entries.count), admin: admin))
        }
        self.entries = sibling?.entries ?? entries
        try RelayDirectory.pin(OrganisationBundle(entries: self.entries, checkpoint: nil), directory: folder.path, now: WallClock.seconds())
        let directory = try RelayDirectory(directory: folder.path, relayKey: keys.noise.publicKey, now: WallClock.seconds())
        store = SharedTestStore(inner: try SQLiteEnvelopeStore(path: folder.file("queue.sqlite"), reserveBytes: 0, durability: .os))
        var configuration = RelayConfiguration(directory: folder.path)
        configuration.listenPort = 0
        configuration.linksEnabled = false
        // Generous: these tests run beside many others on a loaded machine, and a handshake
        // cut short would be reported as an unproven key, not what the test looks for.
        configuration.limits.handshakeTimeout = 60
        configure(&configuration)
        var logger = Logger(label: "test.relay")
        logger.logLevel = .critical
        let port = self.port
        blobStore = blobs ? try SQLiteBlobStore(path: folder.file("blobs.sqlite"), durability: .os) : nil
        server = RelayServer(
            configuration: configuration, keys: keys, directory: directory, store: store, logger: logger, blobs: blobStore,
            onListening: { address in port.value.withLock { $0 = address.port } })
    }

    static func entry(_ body: EntryBody, after entries: [DirectoryEntry], at time: UInt64, admin: SigningKey) -> DirectoryEntry {
        DirectoryEntry(sequence: UInt64(entries.count), previousHash: entries.last?.hash ?? .zero, timestamp: time, body: body).signed(by: admin)
    }

    /// Runs the relay until `stop`; returns once it listens.
    func start() async throws -> Int {
        let server = self.server
        running.withLock { $0 = Task { try? await server.run() } }
        return try await eventually("the relay listens") { port.value.withLock { $0 } }
    }

    func stop() async {
        let task = running.withLock { $0 }
        task?.cancel()
        await task?.value
    }

    var listeningPort: Int { port.value.withLock { $0 } ?? 0 }

    func connect(_ key: AgreementPrivateKey, port: Int? = nil) async throws(ClientError) -> RelayClient {
        try await RelayClient.connect(
            host: "127.0.0.1", port: port ?? listeningPort, clientKey: key, relayKey: keys.noise.publicKey, timeout: .seconds(Int64(60))).client
    }

    /// Asks for this device's mailbox, as `valise sync` does.
    static func fetch(_ client: RelayClient) async throws {
        var fetch = WireFetch()
        fetch.window = 8
        try await client.post(.fetch(fetch))
    }

    /// An envelope committed for `member`, as another node of the relay would commit it
    /// (straight into the shared store: this node is not told).
    func commitElsewhere(for member: MemberName) throws -> MessageID {
        let id = MessageID(bytes: (0..<16).map { _ in UInt8.random(in: 0...255) })!
        let envelope = IncomingEnvelope(mailbox: Mailbox(member.value), id: id, precedence: .routine, ttl: .day, body: [1, 2, 3])
        _ = try store.inner.accept([envelope], now: WallClock.seconds())
        return id
    }
}

/// Waits for `value` to be non-nil, looking every 20 ms, at most 15 s (bounded, so a broken
/// relay fails the test instead of hanging it).
func eventually<T>(_ what: String, _ value: () throws -> T?) async throws -> T {
    for _ in 0..<750 {
        if let found = try value() { return found }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    Issue.record("timed out waiting: \(what)")
    throw CancellationError()
}

/// The next message from the relay that is not a MailboxIdle notice, or nil once the
/// connection closed.
func nextMessage(_ client: RelayClient) async -> WireRelayMessage? {
    for await message in client.unsolicited {
        if case .mailboxIdle = message.body { continue }
        return message
    }
    return nil
}
