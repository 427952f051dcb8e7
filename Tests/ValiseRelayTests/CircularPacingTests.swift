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

/// A circular to hundreds of members through a relay in this process, with the client
/// library as `valise send` drives it: the relay's Welcome says its send rate, and the
/// client keeps to it (docs/PROTOCOL.md, "Relay protocol"; issue 20's test).
@Suite("Circulars: pacing against the relay's limits (in-process relay)", .serialized)
struct CircularPacingTests {
    @Test("at 5 sends a second and bursts of 20, a circular to 500 members completes in one flush without a RATE_LIMITED answer")
    func fiveHundred() async throws {
        let world = try CircularWorld(recipients: 500) { limits in
            limits.sendsPerSecondPerDevice = 5
            limits.sendBurstPerDevice = 20
        }
        let port = try await world.start()
        let (sync, client, welcome) = try await world.connect(port: port)
        #expect(welcome.sendsPerSecond == 5 && welcome.sendBurst == 20, "the Welcome says the relay's rate")

        let recipients = try RecipientSelector(parsing: "mission:Genève").resolve(in: sync.messenger.directory.state, sender: world.senderName)
        #expect(recipients.count == 500)
        let composed = try sync.messenger.compose(
            "Circular: the offices close on Friday.", to: recipients, circular: "mission:Genève", precedence: .routine, ttl: .week, now: WallClock.seconds())
        #expect(composed.count == 500)

        try await sync.flushOutbox(now: WallClock.seconds())
        #expect(sync.report.sent.count == 500)
        #expect(!sync.report.notices.contains { $0.contains("more slowly") }, "\(sync.report.notices)")
        let items = try sync.messenger.sentItems()
        guard items.count == 1, case .circular(let circular) = items[0] else {
            Issue.record("the circular is not one item: \(items.count)")
            return
        }
        #expect(circular.counts == [.accepted: 500])
        #expect(world.server.counters.snapshot[.sendRate] == 0, "the relay answered RATE_LIMITED to a send")
        #expect(world.server.counters.snapshot[.prekeyFetchRate] == 0)
        sync.messenger.close()
        await client.close()
        await world.stop()
    }

    @Test("a paced send refused RATE_LIMITED (the device's other connection used the burst) waits and goes on")
    func rateLimitedRetried() async throws {
        let world = try CircularWorld(recipients: 50) { limits in
            limits.sendsPerSecondPerDevice = 5
            limits.sendBurstPerDevice = 20
        }
        let port = try await world.start()
        // Another connection of the same device, unpaced, spends the relay's whole burst.
        let (other, otherClient, _) = try await world.connect(port: port, paced: false)
        let all = try RecipientSelector(parsing: "all").resolve(in: other.messenger.directory.state, sender: world.senderName)
        _ = try other.messenger.compose("First.", to: Array(all.prefix(20)), circular: "all", precedence: .routine, ttl: .day, now: WallClock.seconds())
        try await other.flushOutbox(now: WallClock.seconds())
        #expect(other.report.sent.count == 20)
        other.messenger.close()
        await otherClient.close()

        let (sync, client, _) = try await world.connect(port: port)
        _ = try sync.messenger.compose("Second.", to: Array(all.suffix(30)), circular: "all", precedence: .routine, ttl: .day, now: WallClock.seconds())
        try await sync.flushOutbox(now: WallClock.seconds())
        #expect(sync.report.sent.count == 30, "\(sync.report.notices)")
        #expect(world.server.counters.snapshot[.sendRate] ?? 0 >= 1, "the relay's burst was spent: the first paced send met RATE_LIMITED")
        sync.messenger.close()
        await client.close()
        await world.stop()
    }

    @Test("bundles are fetched in batches of 100; a batch refused RATE_LIMITED is fetched again after a wait")
    func prekeyFetchRetried() async throws {
        // 100 members a second, at most 100 at once: the second batch (of 50) meets an
        // empty bucket and is refused once, then goes through a second later.
        let world = try CircularWorld(recipients: 150) { limits in
            limits.prekeyMembersPerMinute = 6000
            limits.prekeyMemberBurst = 100
        }
        let port = try await world.start()
        let (sync, client, _) = try await world.connect(port: port)
        let recipients = try RecipientSelector(parsing: "all").resolve(in: sync.messenger.directory.state, sender: world.senderName)
        #expect(recipients.count == 150)
        _ = try sync.messenger.compose("All staff: fire drill at ten.", to: recipients, circular: "all", precedence: .immediate, ttl: .day, now: WallClock.seconds())
        try await sync.flushOutbox(now: WallClock.seconds())
        #expect(sync.report.sent.count == 150, "\(sync.report.notices)")
        #expect(world.server.counters.snapshot[.prekeyFetchRate] ?? 0 >= 1, "the relay refused the second batch at first")
        sync.messenger.close()
        await client.close()
        await world.stop()
    }
}

/// An organisation of one relay (hq, in this process), a sender (alice@jakarta) and
/// `recipients` members of the mission "Genève" whose prekeys are already on the relay
/// (written straight into its store, signed as their devices would sign them).
final class CircularWorld: Sendable {
    let folder = TemporaryDirectory()
    let senderFolder = TemporaryDirectory()
    let keys = RelayKeys.generate(now: WallClock.seconds())
    let sender: DeviceIdentity
    let senderName: MemberName
    let entries: [DirectoryEntry]
    let server: RelayServer
    private final class Port: Sendable { let value = Mutex<Int?>(nil) }
    private let port = Port()
    private let running = Mutex<Task<Void, Never>?>(nil)

    init(recipients count: Int, limits configure: (inout RelayConfiguration.Limits) -> Void) throws {
        let admin = SigningKey()
        let start = WallClock.seconds() - 3600
        senderName = try MemberName("alice@jakarta")
        sender = DeviceIdentity.generate(memberName: senderName, now: start)
        let admins = AdminSet(admins: [AdminRecord(name: "admin", signingKey: admin.publicKey, transportKey: AgreementPrivateKey().publicKey)], threshold: 1)
        var bodies: [EntryBody] = [
            .genesis(Genesis(organisation: "Ministry", admins: admins, freshness: .standard)),
            .addRelay(keys.publicFile.record(name: "hq", address: "127.0.0.1:7400")),
            .enroll(Enrollment(request: sender.enrollmentRequest(), mission: "Jakarta", role: "ambassador")),
        ]
        var members: [(MemberName, SigningKey)] = []
        for index in 0..<count {
            let identity = SigningKey()
            let name = try MemberName("m\(index)@geneva")
            members.append((name, identity))
            let request = MemberRequest.enrollment(member: name, identityKey: identity, transportKey: AgreementPrivateKey().publicKey, created: start)
            bodies.append(.enroll(Enrollment(request: request, mission: "Gen\u{00E8}ve", role: "attaché")))
        }
        var entries: [DirectoryEntry] = []
        for body in bodies {
            entries.append(DirectoryEntry(
                sequence: UInt64(entries.count), previousHash: entries.last?.hash ?? .zero, timestamp: start + UInt64(entries.count), body: body
            ).signed(by: admin))
        }
        self.entries = entries
        let bundle = OrganisationBundle(entries: entries, checkpoint: nil)
        try RelayDirectory.pin(bundle, directory: folder.path, now: WallClock.seconds())
        let directory = try RelayDirectory(directory: folder.path, relayKey: keys.noise.publicKey, now: WallClock.seconds())
        let store = try SQLiteEnvelopeStore(path: folder.file("queue.sqlite"), reserveBytes: 0, durability: .os)
        // Every member publishes the same public keys, each signed by its own identity key:
        // what the sender checks is the signatures, and no recipient decrypts here.
        let signedPrekey = AgreementPrivateKey().publicKey
        let envelopeKey = XWingPrivateKey().publicKey
        let kem = MLKEM1024PrivateKey().publicKey
        for (name, identity) in members {
            let prekeys = StoredPrekeys(
                signedPrekey: signedPrekey.bytes, signedPrekeySignature: identity.signature(for: signedPrekey.bytes, purpose: SignaturePurpose("signed-prekey")).bytes,
                envelopeKey: envelopeKey.bytes, envelopeKeySignature: identity.signature(for: envelopeKey.bytes, purpose: SignaturePurpose("xwing-envelope-key")).bytes,
                updatedAt: start)
            let lastResort = StoredKEMPrekey(key: kem.bytes, signature: identity.signature(for: [2] + kem.bytes, purpose: SignaturePurpose("kem-prekey")).bytes)
            _ = try store.storePrekeys(mailbox: Mailbox(name.value), prekeys: prekeys, oneTimePrekeys: [], lastResortKEMPrekey: lastResort, oneTimeKEMPrekeys: [])
        }
        var configuration = RelayConfiguration(directory: folder.path)
        configuration.listenPort = 0
        configuration.linksEnabled = false
        configuration.limits.handshakeTimeout = 60
        configure(&configuration.limits)
        var logger = Logger(label: "test.relay")
        logger.logLevel = .critical
        let port = self.port
        server = RelayServer(
            configuration: configuration, keys: keys, directory: directory, store: store, logger: logger,
            onListening: { address in port.value.withLock { $0 = address.port } })
    }

    /// Runs the relay until `stop`; returns its port once it listens.
    func start() async throws -> Int {
        let server = self.server
        running.withLock { $0 = Task { try? await server.run() } }
        let port = self.port
        return try await eventually("the relay listens") { port.value.withLock { $0 } }
    }

    func stop() async {
        let task = running.withLock { $0 }
        task?.cancel()
        await task?.value
    }

    /// The sender's device, its directory pinned, connected as `valise send` connects:
    /// the MessageSync paced by what the Welcome said.
    func connect(port: Int, paced: Bool = true) async throws -> (MessageSync, RelayClient, WireWelcome) {
        let home = ValiseHome(path: senderFolder.file("home"))
        let pinned = PinnedOrganisation(home: home)
        _ = try pinned.pin(OrganisationBundle(entries: entries, checkpoint: nil), expectedGenesis: nil, now: WallClock.seconds(), file: "test bundle")
        let loaded = try pinned.load(now: WallClock.seconds())
        let messenger = try Messenger(home: home, identity: sender, directory: loaded, receiptDelay: 0...0)
        let (client, welcome) = try await RelayClient.connect(
            host: "127.0.0.1", port: port, clientKey: sender.transportKey, relayKey: keys.noise.publicKey, timeout: TimeAmount.seconds(Int64(60)))
        let sync = MessageSync(
            messenger: messenger, client: client, relay: try #require(loaded.state.relays["hq"]),
            sendsPerSecond: paced ? welcome.sendsPerSecond : 0, sendBurst: paced ? welcome.sendBurst : 0)
        return (sync, client, welcome)
    }
}
