import Foundation
import Synchronization
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
@testable import ValiseRelay
import ValiseStore
import ValiseWire

/// A relay node whose store other nodes share (docs/OPERATIONS.md, high availability): it
/// leases what it delivers, follows the store's announcements, shares its directory, and
/// stops serving while the store is lost (UNAVAILABLE), so that clients move to another node.
@Suite("Relay: a node of a shared store")
struct SharedStoreRelayTests {
    @Test("a connection's deliveries are leased to it and released when it closes; an announcement for its mailbox wakes it")
    func leasesAndWake() async throws {
        let relay = try SharedRelayFixture()
        _ = try await relay.start()
        let alice = try await relay.connect(relay.alice.transport)
        try await SharedRelayFixture.fetch(alice)
        let holder = try await eventually("alice's connection looks in the store") { relay.store.leases.withLock { $0.holders.first } }
        #expect(holder.node == relay.store.node)

        // Another node commits for alice and announces it: this node's connection delivers it.
        let id = try relay.commitElsewhere(for: relay.alice.name)
        relay.store.announce(.mailboxes([Mailbox(relay.alice.name.value)]))
        let message = await nextMessage(alice)
        guard case .deliver(let deliver)? = message?.body else {
            Issue.record("expected a delivery, got \(String(describing: message))")
            return
        }
        #expect(Array(deliver.id) == id.bytes)
        #expect(relay.store.leases.withLock { $0.held[id] } == holder)

        // Every look of that connection is under one holder; its close gives its leases back.
        #expect(relay.store.leases.withLock { Set($0.holders) } == [holder])
        await alice.close()
        _ = try await eventually("the closed connection's leases are released") { relay.store.leases.withLock { $0.released.contains(holder) ? true : nil } }
        #expect(relay.store.leases.withLock { $0.held[id] } == nil)

        // A second connection is another holder.
        let again = try await relay.connect(relay.alice.transport)
        try await SharedRelayFixture.fetch(again)
        _ = try await eventually("the new connection leases under a holder of its own") {
            relay.store.leases.withLock { $0.held[id].flatMap { $0 != holder ? $0 : nil } }
        }
        await again.close()
        await relay.stop()
    }

    @Test("the poll finds what another node committed when no announcement came")
    func poll() async throws {
        let relay = try SharedRelayFixture()
        _ = try await relay.start()
        let bob = try await relay.connect(relay.bob.transport)
        try await SharedRelayFixture.fetch(bob)
        _ = try await eventually("bob's connection looks in the store") { relay.store.leases.withLock { $0.holders.first } }
        let id = try relay.commitElsewhere(for: relay.bob.name)
        // No announcement: the announcement was lost. The poll (every 5 s) delivers it.
        let message = await nextMessage(bob)
        guard case .deliver(let deliver)? = message?.body else {
            Issue.record("expected a delivery, got \(String(describing: message))")
            return
        }
        #expect(Array(deliver.id) == id.bytes)
        await bob.close()
        await relay.stop()
    }

    @Test("the node's directory goes to an empty shared log; a revocation another node stored there drops the revoked device's connection")
    func directory() async throws {
        let relay = try SharedRelayFixture()
        _ = try await relay.start()
        // At start the shared log was shorter (empty): it gets this node's entries.
        _ = try await eventually("the shared log gets the node's entries") {
            relay.store.log.withLock { $0.count == relay.entries.count ? true : nil }
        }
        #expect(relay.store.log.withLock { $0 } == relay.entries.map { $0.encoded() })

        let bob = try await relay.connect(relay.bob.transport)
        let revocation = SharedRelayFixture.entry(
            .revoke(Revocation(target: .member(relay.bob.name), reason: "device lost")), after: relay.entries, at: WallClock.seconds() - 60, admin: relay.admin)
        relay.store.log.withLock { $0.append(revocation.encoded()) }
        relay.store.announce(.directory)
        let message = await nextMessage(bob)
        if case .error(let error)? = message?.body {
            #expect(error.code == .revoked)
        } else {
            #expect(message == nil, "the revoked device's connection closes")
        }
        #expect(relay.server.directory.snapshot.count == relay.entries.count + 1)
        // A device that was not revoked is served.
        let alice = try await relay.connect(relay.alice.transport)
        await alice.close()
        await relay.stop()
    }

    @Test("entries in the shared log that do not verify are ignored, never applied")
    func forgedEntries() async throws {
        let relay = try SharedRelayFixture()
        _ = try await relay.start()
        _ = try await eventually("the shared log gets the node's entries") { relay.store.log.withLock { $0.count == relay.entries.count ? true : nil } }
        // A revocation of alice signed by a key that is no admin's.
        let forged = SharedRelayFixture.entry(
            .revoke(Revocation(target: .member(relay.alice.name), reason: "forged")), after: relay.entries, at: WallClock.seconds() - 60, admin: SigningKey())
        relay.store.log.withLock { $0.append(forged.encoded()) }
        relay.store.announce(.directory)
        _ = try await eventually("the node read the forged entry") { relay.store.served.withLock { $0.contains(forged.encoded()) ? true : nil } }
        // Then a real revocation (of bob) in its place: once it is applied, the forged one
        // was refused (bad signature, or a fork of what is stored), never applied.
        let revocation = SharedRelayFixture.entry(
            .revoke(Revocation(target: .member(relay.bob.name), reason: "device lost")), after: relay.entries, at: WallClock.seconds() - 60, admin: relay.admin)
        relay.store.log.withLock { $0[relay.entries.count] = revocation.encoded() }
        relay.store.announce(.directory)
        _ = try await eventually("the real revocation is applied") { relay.server.directory.snapshot.count == relay.entries.count + 1 ? true : nil }
        let snapshot = relay.server.directory.snapshot
        #expect(snapshot.entries.last?.hash == revocation.hash)
        #expect(snapshot.state.members[relay.alice.name]?.isActive == true)
        let alice = try await relay.connect(relay.alice.transport)
        await alice.close()
        await relay.stop()
    }

    @Test("a lost store: connections hear UNAVAILABLE and close, new ones are refused with it, a send is never Accepted; after .everything the node serves again")
    func unavailable() async throws {
        let relay = try SharedRelayFixture()
        _ = try await relay.start()
        let alice = try await relay.connect(relay.alice.transport)

        // A send whose commit fails is answered UNAVAILABLE.
        relay.store.failing.withLock { $0 = true }
        var send = WireSend()
        send.id = Data((0..<16).map { _ in UInt8.random(in: 0...255) })
        send.recipient = relay.bob.name.value
        send.precedence = .routine
        send.ttl = .day
        send.envelope = Data([1, 2, 3])
        let refused = await #expect(throws: ClientError.self) { try await alice.request(.send(send)) }
        #expect(refused?.code == "relay-unavailable")
        // ... and the node closes its connections.
        let last = await nextMessage(alice)
        if case .error(let error)? = last?.body { #expect(error.code == .unavailable) } else { #expect(last == nil) }
        #expect(try relay.store.inner.states(of: [MessageID(bytes: Array(send.id))!], now: WallClock.seconds()).isEmpty)

        // New connections hear UNAVAILABLE after the handshake.
        let refusedConnection = await #expect(throws: ClientError.self) { try await relay.connect(relay.bob.transport) }
        #expect(refusedConnection?.code == "relay-unavailable")

        // The announcements are back: the node serves again.
        relay.store.failing.withLock { $0 = false }
        relay.store.announce(.everything)
        let bob = try await connectEventually(relay, relay.bob.transport)

        // The announcements stop: connections hear UNAVAILABLE and close.
        relay.store.announce(.unavailable)
        let dropped = await nextMessage(bob)
        if case .error(let error)? = dropped?.body { #expect(error.code == .unavailable) } else { #expect(dropped == nil) }
        relay.store.announce(.everything)
        let again = try await connectEventually(relay, relay.alice.transport)
        await again.close()
        await relay.stop()
    }
}

/// Connects once the node serves again (bounded: 750 tries, 20 ms apart).
func connectEventually(_ relay: SharedRelayFixture, _ key: AgreementPrivateKey) async throws -> RelayClient {
    for _ in 0..<750 {
        if let client = try? await relay.connect(key) { return client }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    Issue.record("the node never served again")
    throw CancellationError()
}
