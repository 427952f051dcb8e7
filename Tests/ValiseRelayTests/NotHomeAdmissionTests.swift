import Foundation
import Synchronization
import Testing
import ValiseCrypto
import ValiseDirectory
@testable import ValiseRelay
import ValiseStore
import ValiseTestSupport
import ValiseWire

/// A device whose home relay is another relay is admitted *not home*: it may ping and read
/// the whole directory, anything else is NOT_HOME naming its home (docs/PROTOCOL.md,
/// "Relay protocol"); a move drops its connections with NOT_HOME, not REVOKED.
@Suite("Relay: devices homed elsewhere (NOT_HOME)")
struct NotHomeAdmissionTests {
    /// 2026-01-01T00:00:00Z; entries a minute apart.
    static let epoch: UInt64 = 1_767_225_600

    let admin = SigningKey()
    let adminTransport = AgreementPrivateKey()
    let hq = (noise: AgreementPrivateKey(), signing: SigningKey())
    let geneva = (noise: AgreementPrivateKey(), signing: SigningKey())
    let alice = (identity: SigningKey(), transport: AgreementPrivateKey())
    let bob = (identity: SigningKey(), transport: AgreementPrivateKey())
    var now: UInt64 { Self.epoch + 3600 }

    /// Genesis, hq (the default relay), geneva, alice enrolled without a home (so at hq),
    /// bob enrolled at geneva; then `more`.
    func entries(relays: Int = 2, _ more: [EntryBody] = []) throws -> [DirectoryEntry] {
        let admins = AdminSet(admins: [AdminRecord(name: "admin", signingKey: admin.publicKey, transportKey: adminTransport.publicKey)], threshold: 1)
        var bodies: [EntryBody] = [
            .genesis(Genesis(organisation: "Ministry", admins: admins, freshness: .standard)),
            .addRelay(RelayPublicFile(noiseKey: hq.noise.publicKey, signingKey: hq.signing).record(name: "hq", address: "hq.example:7400")),
        ]
        if relays > 1 {
            bodies.append(.addRelay(RelayPublicFile(noiseKey: geneva.noise.publicKey, signingKey: geneva.signing).record(name: "geneva", address: "geneva.example:7400")))
        }
        let aliceRequest = MemberRequest.enrollment(member: try MemberName("alice@jakarta"), identityKey: alice.identity, transportKey: alice.transport.publicKey, created: Self.epoch)
        let bobRequest = MemberRequest.enrollment(member: try MemberName("bob@geneva"), identityKey: bob.identity, transportKey: bob.transport.publicKey, created: Self.epoch)
        bodies.append(.enroll(Enrollment(request: aliceRequest, mission: "Jakarta", role: "attaché")))
        let bobEnrollment = Enrollment(request: bobRequest, mission: "Geneva", role: "attaché")
        bodies.append(relays > 1 ? .enrollAtHome(bobEnrollment, home: "geneva") : .enroll(bobEnrollment))
        var entries: [DirectoryEntry] = []
        for body in bodies + more {
            let previous = entries.last
            entries.append(DirectoryEntry(
                sequence: UInt64(entries.count), previousHash: previous?.hash ?? .zero, timestamp: Self.epoch + 60 * UInt64(entries.count), body: body
            ).signed(by: admin))
        }
        return entries
    }

    func snapshot(_ entries: [DirectoryEntry], relayKey: AgreementPublicKey) throws -> RelayDirectory.Snapshot {
        let verifier = try DirectoryVerifier.verify(entries, pinnedGenesis: nil, now: now)
        return RelayDirectory.Snapshot(verifier: verifier, entries: entries, checkpoint: nil, relayKey: relayKey)
    }

    func processor(_ admission: Admission) -> RelayRequestProcessor {
        RelayRequestProcessor(admission: admission, settings: .init(
            maximumEntriesPerFetch: 1000, maximumEnvelopeBytes: 65_536, deliveryWindow: 32, defaultTTL: .week, maximumTTL: .month))
    }

    func request(_ id: UInt64, _ body: WireClientMessage.OneOf_Body) -> [UInt8] {
        var message = WireClientMessage()
        message.requestID = id
        message.body = body
        return WireCodec.encode(message)
    }

    func answer(_ outcome: RelayRequestProcessor.Outcome) -> WireRelayMessage? {
        if case .reply(let message) = outcome { return message }
        return nil
    }

    @Test("at hq, bob (homed at geneva) is not home and alice (homed at the default relay, hq) is a device; at geneva, the other way round")
    func admissions() throws {
        let log = try entries()
        let atHQ = try snapshot(log, relayKey: hq.noise.publicKey)
        #expect(atHQ.relayName == "hq")
        #expect(atHQ.admissions[alice.transport.publicKey] == .device(try MemberName("alice@jakarta")))
        #expect(atHQ.admissions[bob.transport.publicKey] == .notHome(try MemberName("bob@geneva"), home: "geneva"))
        let atGeneva = try snapshot(log, relayKey: geneva.noise.publicKey)
        #expect(atGeneva.admissions[alice.transport.publicKey] == .notHome(try MemberName("alice@jakarta"), home: "hq"))
        #expect(atGeneva.admissions[bob.transport.publicKey] == .device(try MemberName("bob@geneva")))
    }

    @Test("a relay that does not know its own name, and the one relay of a single-relay organisation, admit every device as before")
    func unchangedWithoutHomes() throws {
        let unnamed = try snapshot(try entries(), relayKey: AgreementPrivateKey().publicKey)
        #expect(unnamed.relayName == nil)
        #expect(unnamed.admissions[bob.transport.publicKey] == .device(try MemberName("bob@geneva")))
        let single = try snapshot(try entries(relays: 1), relayKey: hq.noise.publicKey)
        #expect(single.admissions[alice.transport.publicKey] == .device(try MemberName("alice@jakarta")))
        #expect(single.admissions[bob.transport.publicKey] == .device(try MemberName("bob@geneva")))
    }

    @Test("not home: Welcome role 4 naming the home and showing the whole directory; Ping and DirectoryFetch answered; every other request NOT_HOME with its id, the connection kept")
    func notHomeRequests() throws {
        let log = try entries()
        let directory = try snapshot(log, relayKey: hq.noise.publicKey)
        let bobName = try MemberName("bob@geneva")
        var relay = processor(.notHome(bobName, home: "geneva"))
        var hello = WireHello()
        hello.protocolVersion = WireCodec.protocolVersion
        guard case .welcome(let welcome)? = answer(relay.handle(request(1, .hello(hello)), directory: directory))?.body else {
            Issue.record("no Welcome")
            return
        }
        #expect(welcome.role == .notHome && welcome.homeRelay == "geneva" && welcome.relayName == "hq")
        #expect(welcome.directoryCount == UInt64(log.count) && welcome.directoryHead == Data(directory.state.headHash.bytes))

        var ping = WirePing()
        ping.data = Data([1, 2])
        guard case .pong(let pong)? = answer(relay.handle(request(2, .ping(ping)), directory: directory))?.body else {
            Issue.record("no Pong")
            return
        }
        #expect(pong.data == Data([1, 2]))
        guard case .directoryEntries(let fetched)? = answer(relay.handle(request(3, .directoryFetch(WireDirectoryFetch())), directory: directory))?.body else {
            Issue.record("no DirectoryEntries")
            return
        }
        #expect(fetched.entries.count == log.count && fetched.directoryCount == UInt64(log.count))

        var send = WireSend()
        send.id = Data(repeating: 7, count: 16)
        send.recipient = "alice@jakarta"
        send.envelope = Data([1])
        var prekeys = WirePrekeyFetch()
        prekeys.members = ["alice@jakarta"]
        var status = WireStatusQuery()
        status.nonce = Data(repeating: 1, count: 16)
        let refused: [(UInt64, WireClientMessage.OneOf_Body)] = [
            (4, .send(send)), (5, .fetch(WireFetch())), (6, .prekeyFetch(prekeys)), (7, .statusQuery(status)),
            (8, .prekeyUpload(WirePrekeyUpload())), (9, .ack(WireAck())), (10, .directoryPublish(WireDirectoryPublish())),
        ]
        for (id, body) in refused {
            let reply = answer(relay.handle(request(id, body), directory: directory))
            guard case .error(let error)? = reply?.body else {
                Issue.record("request \(id) was not refused: \(String(describing: reply))")
                continue
            }
            #expect(reply?.requestID == id)
            #expect(error.code == .notHome)
            #expect(error.message == "bob@geneva's home relay is geneva: connect there")
        }
    }

    @Test("a device at its home relay is served as before")
    func homeDevice() throws {
        let directory = try snapshot(try entries(), relayKey: geneva.noise.publicKey)
        var relay = processor(.device(try MemberName("bob@geneva")))
        var hello = WireHello()
        hello.protocolVersion = WireCodec.protocolVersion
        guard case .welcome(let welcome)? = answer(relay.handle(request(1, .hello(hello)), directory: directory))?.body else {
            Issue.record("no Welcome")
            return
        }
        #expect(welcome.role == .device && welcome.homeRelay.isEmpty && welcome.relayName == "geneva")
        var send = WireSend()
        send.id = Data(repeating: 7, count: 16)
        send.recipient = "alice@jakarta"
        send.envelope = Data([1])
        guard case .send = relay.handle(request(2, .send(send)), directory: directory) else {
            Issue.record("the send was not taken")
            return
        }
    }

    @Test("a published move drops the moved device's connections with NOT_HOME naming its new home (not REVOKED); a revocation still drops with REVOKED")
    func moveDropsWithNotHome() throws {
        let folder = TemporaryDirectory()
        let log = try entries()
        try RelayDirectory.pin(OrganisationBundle(entries: log, checkpoint: nil), directory: folder.path, now: now)
        let directory = try RelayDirectory(directory: folder.path, relayKey: geneva.noise.publicKey, now: now)
        let bobName = try MemberName("bob@geneva")
        let aliceName = try MemberName("alice@jakarta")
        #expect(directory.snapshot.admissions[bob.transport.publicKey] == .device(bobName))

        // Bob moves to hq: geneva no longer serves him; alice is revoked.
        let more = try entries([.move(member: bobName, home: "hq"), .revoke(Revocation(target: .member(aliceName), reason: "left"))])
        var verifications = 0
        let verified = try directory.verify(entries: more.suffix(2).map { $0.encoded() }, checkpoint: [], now: now, verifications: &verifications)
        let published = try directory.commit(verified, now: now)
        #expect(published.rehomed == [bob.transport.publicKey: "bob@geneva's home relay is hq: connect there"])
        #expect(published.noLongerAdmitted == [alice.transport.publicKey])
        #expect(published.removedMembers == [aliceName])
        #expect(directory.snapshot.admissions[bob.transport.publicKey] == .notHome(bobName, home: "hq"))

        // What the registry does with it: one NOT_HOME, one REVOKED.
        let registry = ConnectionRegistry()
        let bobConnection = RecordingConnection()
        let aliceConnection = RecordingConnection()
        registry.register(bobConnection, key: bob.transport.publicKey, role: .device)
        registry.register(aliceConnection, key: alice.transport.publicKey, role: .device)
        registry.drop(changedBy: published)
        #expect(bobConnection.reasons.map(\.protocolCode) == [.notHome])
        #expect(aliceConnection.reasons.map(\.protocolCode) == [.revoked])

        // Moving back: hq's old connection for bob (not home there) is dropped too, so that
        // bob learns he is home.
        #expect(RelayDirectory.rehoming(from: .notHome(bobName, home: "geneva"), to: .device(bobName), relayName: "hq") == "bob@geneva's home relay is now hq: connect again")
        #expect(RelayDirectory.rehoming(from: .device(bobName), to: nil, relayName: "hq") == nil)
    }
}

/// A connection that records why it was dropped.
final class RecordingConnection: DroppableConnection {
    private let dropped = Mutex<[RelayError]>([])

    func drop(_ reason: RelayError) { dropped.withLock { $0.append(reason) } }

    var reasons: [RelayError] { dropped.withLock { $0 } }
}
