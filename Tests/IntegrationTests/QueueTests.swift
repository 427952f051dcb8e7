import Foundation
import Testing
import ValiseClient
import ValiseWire

// The relay's durable message queue (issue 5; DESIGN.md, "Delivery contract" and
// "Storage") against a real `valised` on 127.0.0.1: each test builds its own organisation
// with the real CLI, drives devices in-process with RelayClient, and checks exact ids,
// counts and order. Timing enters only as generous upper bounds, and as a short quiet
// moment after the expected deliveries in which an extra one would have been seen.
// Limits, expiry, signed status and revocation are in the QueueTests+… files.

@Suite("Queue: store and forward (real valised)", .serialized)
struct QueueTests {
    static let alice = "alice@jakarta"
    static let bob = "bob@jakarta"
    static let carol = "carol@nairobi"
    static let pair = [alice, bob]

    // MARK: 1. Precedence

    @Test("offline recipient: delivered FLASH, IMMEDIATE, PRIORITY, ROUTINE, and oldest first within each")
    func precedenceOrder() async throws {
        let world = try RelayWorld(members: Self.pair)
        let alice = try await QueueDevice(world: world, member: Self.alice)
        let order: [WirePrecedence] = [.routine, .flash, .priority, .immediate, .routine, .flash, .immediate, .priority, .routine]
        var sent: [(id: [UInt8], precedence: WirePrecedence)] = []
        for precedence in order {
            let id = QueueFixture.id()
            try await alice.sendAccepted(id, to: Self.bob, precedence: precedence)
            sent.append((id, precedence))
        }
        // Stable sort: within one precedence, the order of sending (arrival).
        let expected = [WirePrecedence.flash, .immediate, .priority, .routine].flatMap { precedence in
            sent.filter { $0.precedence == precedence }.map { Data($0.id) }
        }

        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        let delivered = await bob.deliveries(exactly: sent.count)
        #expect(delivered.map(\.id) == expected, "delivery order by precedence, then arrival")
        #expect(delivered.map(\.precedence) == [.flash, .flash, .immediate, .immediate, .priority, .priority, .routine, .routine, .routine])
        #expect(delivered.count == sent.count, "each envelope once")
        #expect(zip(delivered, delivered.dropFirst()).allSatisfy { $0.precedence != $1.precedence || $0.arrivedAt <= $1.arrivedAt })
        await alice.close()
        await bob.close()
    }

    // MARK: 2. Online push

    @Test("online recipient: each accepted envelope is pushed at once, without another Fetch")
    func onlinePush() async throws {
        let world = try RelayWorld(members: Self.pair)
        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        #expect(await bob.deliveries(exactly: 0, quiet: 0.2).isEmpty, "an empty mailbox delivers nothing")

        let alice = try await QueueDevice(world: world, member: Self.alice)
        var ids: [Data] = []
        for number in 1...3 {
            let id = QueueFixture.id()
            let body = Array("envelope \(number)".utf8)
            let accepted = try await alice.sendAccepted(id, to: Self.bob, precedence: .priority, ttl: .day, envelope: body)
            ids.append(Data(id))
            // Pushed as soon as it is accepted: bob never asks again.
            let delivered = await bob.deliveries(atLeast: number, within: 5)
            #expect(delivered.count == number, "envelope \(number) was not pushed")
            guard let last = delivered.last else { continue }
            #expect(last.id == Data(id))
            #expect(last.envelope == Data(body), "the sealed bytes arrive unchanged")
            #expect(last.precedence == .priority)
            #expect(last.expiresAt == accepted.expiresAt, "Deliver and Accepted agree on the expiry")
        }
        #expect(await bob.deliveries(exactly: 3).map(\.id) == ids, "each envelope pushed exactly once")
        await alice.close()
        await bob.close()
    }

    // MARK: 3. Acks, reconnects and restarts

    @Test("an unacked envelope is delivered again after reconnect and after a relay restart; an acked one never")
    func ackSemantics() async throws {
        let world = try RelayWorld(members: Self.pair)
        let alice = try await QueueDevice(world: world, member: Self.alice)
        let acked = QueueFixture.id()
        let unacked = QueueFixture.id()
        try await alice.sendAccepted(acked, to: Self.bob)
        try await alice.sendAccepted(unacked, to: Self.bob)
        await alice.close()

        var bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        #expect(await bob.deliveries(exactly: 2).map(\.id) == [Data(acked), Data(unacked)])
        try await bob.ack([Data(acked)])
        // The Ack has no answer: wait until the store shows it (bounded), then reconnect.
        try await world.expectStatus("the ack was not recorded") { ($0["remembered"] as? [String: Any])?["delivered"] as? Int == 1 }
        await bob.close()

        bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        #expect(await bob.deliveries(exactly: 1).map(\.id) == [Data(unacked)], "after reconnect: only the unacked one")
        await bob.close()

        try world.restartRelay(logName: "relay-restarted.log")
        #expect(world.relayLogLines(containing: "store opened", "queue.envelopes=1").count == 1,
                "the restarted relay reports what it holds:\n\(world.relay.log)")
        bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        let afterRestart = await bob.deliveries(exactly: 1)
        #expect(afterRestart.map(\.id) == [Data(unacked)], "after a restart: only the unacked one")
        try await bob.ack([Data(unacked)])
        try await world.expectStatus("the second ack was not recorded") { $0["envelopes"] as? Int == 0 }
        await bob.close()

        try world.restartRelay(logName: "relay-restarted-again.log")
        bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        #expect(await bob.deliveries(exactly: 0).isEmpty, "acked envelopes are never delivered again")
        await bob.close()
    }

    // MARK: 4. Dedup

    @Test("the same id twice (also after delivery and ack) is Accepted as a duplicate and delivered once; another recipient gets ID_IN_USE")
    func dedup() async throws {
        let world = try RelayWorld()
        let alice = try await QueueDevice(world: world, member: Self.alice)
        let id = QueueFixture.id()
        let first = try await alice.sendAccepted(id, to: Self.bob, envelope: Array("first copy".utf8))
        let again = await alice.send(id, to: Self.bob, envelope: Array("first copy".utf8))
        #expect(again.accepted?.duplicate == true, "a re-send is answered Accepted, duplicate: \(String(describing: again.refusal))")
        #expect(again.accepted?.id == Data(id))
        #expect(again.accepted?.expiresAt == first.expiresAt, "the first copy's expiry, not a new one")
        #expect(try world.queuedEnvelopes() == 1, "no second copy is stored")

        let elsewhere = await alice.send(id, to: Self.carol)
        #expect(elsewhere.isRefused(.idInUse), "the id to another recipient: \(String(describing: elsewhere.refusal))")

        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        let delivered = await bob.deliveries(exactly: 1)
        #expect(delivered.map(\.id) == [Data(id)], "delivered once")
        #expect(delivered.first?.envelope == Data("first copy".utf8))
        try await bob.ack([Data(id)])
        try await world.expectStatus("the ack was not recorded") { $0["envelopes"] as? Int == 0 }
        await bob.close()

        // After delivery and ack the id is still remembered: a late retry is harmless, and
        // bob, online again and fetching, is not sent a second copy.
        let online = try await QueueDevice(world: world, member: Self.bob)
        try await online.fetch()
        let late = await alice.send(id, to: Self.bob, envelope: Array("first copy".utf8))
        #expect(late.accepted?.duplicate == true, "a retry after the ack: \(String(describing: late.refusal))")
        #expect(late.accepted?.expiresAt == first.expiresAt)
        #expect(await alice.send(id, to: Self.carol).isRefused(.idInUse), "still in use after delivery")
        #expect(await online.deliveries(exactly: 0).isEmpty, "the retry is neither pushed nor delivered again")
        #expect(try world.queuedEnvelopes() == 0)
        #expect(try world.remembered("delivered") == 1)
        await online.close()

        let carol = try await QueueDevice(world: world, member: Self.carol)
        try await carol.fetch()
        #expect(await carol.deliveries(exactly: 0).isEmpty, "carol never received the id")
        await carol.close()
        await alice.close()
    }
}
