import Foundation
import Testing
import ValiseClient
import ValiseWire

// Quotas, flow control, a full store and refused sends. Every limit is set as an operator
// would, through VALISED_* variables; each test sees its limit take effect.
extension QueueTests {
    // MARK: 5. Quotas

    @Test("message quota: the 4th send to a mailbox of 3 is MAILBOX_FULL, nothing is evicted, an ack makes room")
    func messageQuota() async throws {
        let world = try RelayWorld(relayEnvironment: ["VALISED_QUEUE_MAX_MESSAGES_PER_MAILBOX": "3"])
        let alice = try await QueueDevice(world: world, member: Self.alice)
        var held: [Data] = []
        for _ in 1...3 {
            let id = QueueFixture.id()
            try await alice.sendAccepted(id, to: Self.bob)
            held.append(Data(id))
        }
        let fourth = QueueFixture.id()
        let refused = await alice.send(fourth, to: Self.bob, precedence: .flash)
        #expect(refused.isRefused(.mailboxFull), "the 4th send: \(String(describing: refused.accepted ?? nil)) \(String(describing: refused.refusal))")
        #expect(refused.refusal?.message.contains("mailbox is full") == true, "a clear message: \(refused.refusal?.message ?? "")")
        // The quota is per mailbox: carol's is empty.
        try await alice.sendAccepted(QueueFixture.id(), to: Self.carol)
        #expect(try world.queuedEnvelopes() == 4)

        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        #expect(await bob.deliveries(exactly: 3).map(\.id) == held, "the three held are delivered; nothing was evicted")
        // Delivered but not acked: still held, still full.
        #expect(await alice.send(fourth, to: Self.bob).isRefused(.mailboxFull), "unacked envelopes still count")

        try await bob.ack([held[0]])
        try await world.expectStatus("the ack was not recorded") { $0["envelopes"] as? Int == 3 }
        await bob.close()
        let retried = await alice.send(fourth, to: Self.bob)
        #expect(retried.accepted?.duplicate == false, "after an ack there is room: \(String(describing: retried.refusal))")
        #expect(await alice.send(QueueFixture.id(), to: Self.bob).isRefused(.mailboxFull), "full again at 3")

        let again = try await QueueDevice(world: world, member: Self.bob)
        try await again.fetch()
        #expect(await again.deliveries(exactly: 3).map(\.id) == Array(held[1...]) + [Data(fourth)],
                "the two unacked and the one that fitted, each once")
        await alice.close()
        await again.close()
    }

    @Test("byte quota: a send that would pass the mailbox's bytes is MAILBOX_FULL; the held ones are delivered")
    func byteQuota() async throws {
        let world = try RelayWorld(members: Self.pair, relayEnvironment: ["VALISED_QUEUE_MAX_BYTES_PER_MAILBOX": "3000"])
        let alice = try await QueueDevice(world: world, member: Self.alice)
        var held: [Data] = []
        for size in [1000, 1000, 1000] {
            let id = QueueFixture.id()
            try await alice.sendAccepted(id, to: Self.bob, envelope: QueueFixture.bytes(size))
            held.append(Data(id))
        }
        // Exactly at the quota; one more byte is over it.
        let over = await alice.send(QueueFixture.id(), to: Self.bob, envelope: [0x42])
        #expect(over.isRefused(.mailboxFull), "one byte over the quota: \(String(describing: over.refusal))")
        #expect(over.refusal?.message.contains("mailbox is full") == true)
        let status = try world.queueStatus()
        #expect(status["envelopes"] as? Int == 3 && status["bytes"] as? Int == 3000, "\(status)")

        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        let delivered = await bob.deliveries(exactly: 3)
        #expect(delivered.map(\.id) == held)
        #expect(delivered.map(\.envelope.count) == [1000, 1000, 1000])
        try await bob.ack([held[1]])
        try await world.expectStatus("the ack freed no bytes") { $0["bytes"] as? Int == 2000 }
        let fits = await alice.send(QueueFixture.id(), to: Self.bob, envelope: QueueFixture.bytes(1000))
        #expect(fits.accepted?.duplicate == false, "1000 bytes fit again: \(String(describing: fits.refusal))")
        #expect(await alice.send(QueueFixture.id(), to: Self.bob, envelope: [0x42]).isRefused(.mailboxFull))
        await alice.close()
        await bob.close()
    }

    // MARK: 6. Flow control

    @Test("flow control: never more unacked deliveries than the window (relay's and Fetch's); each ack admits one more")
    func flowControl() async throws {
        let world = try RelayWorld(members: Self.pair, relayEnvironment: ["VALISED_LIMITS_DELIVERY_WINDOW": "2"])
        let alice = try await QueueDevice(world: world, member: Self.alice)
        var ids: [Data] = []
        for _ in 1...5 {
            let id = QueueFixture.id()
            try await alice.sendAccepted(id, to: Self.bob)
            ids.append(Data(id))
        }
        await alice.close()

        // Fetch's own window, below the relay's: one at a time.
        var bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch(window: 1)
        #expect(await bob.deliveries(exactly: 1).map(\.id) == [ids[0]], "Fetch window 1")
        await bob.close()

        // A Fetch window above the relay's is capped at the relay's: two.
        bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch(window: 50)
        #expect(await bob.deliveries(exactly: 2).map(\.id) == Array(ids[0..<2]), "capped at VALISED_LIMITS_DELIVERY_WINDOW=2")
        await bob.close()

        // Window 0 means the relay's; each ack admits exactly the next envelope. Bob acts like
        // a real client: an envelope he already acked that comes again is a duplicate, which
        // he acks again and does not count.
        bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        #expect(await bob.deliveries(exactly: 2).map(\.id) == Array(ids[0..<2]), "the relay's window")
        var acked: Set<Data> = []
        var firstDeliveries = Array(ids[0..<2])
        var redelivered: [String] = []
        var handled = 2
        /// Handles the deliveries not seen yet; returns the new (never acked) ones.
        func handleNew() async throws -> [Data] {
            var fresh: [Data] = []
            let all = bob.deliveries
            while handled < all.count {
                let id = all[handled].id
                handled += 1
                if acked.contains(id) {
                    redelivered.append(QueueFixture.hex(id))
                    try await bob.ack([id])
                } else {
                    fresh.append(id)
                }
            }
            return fresh
        }
        for (step, next) in ids.enumerated() {
            try await bob.ack([next])
            acked.insert(next)
            let expected = step + 2 < ids.count ? [ids[step + 2]] : []
            var admitted: [Data] = []
            let deadline = Date().addingTimeInterval(10)
            while admitted.count < expected.count && Date() < deadline {
                admitted += try await handleNew()
                try await Task.sleep(for: .milliseconds(10))
            }
            // A quiet moment in which a second admission would show.
            try await Task.sleep(for: .milliseconds(400))
            admitted += try await handleNew()
            #expect(admitted == expected, "acking envelope \(step + 1) admitted \(admitted.map(QueueFixture.hex)), not the next one")
            firstDeliveries += admitted
            let unacked = Set(firstDeliveries).subtracting(acked)
            #expect(unacked.count <= 2, "\(unacked.count) unacked deliveries with a window of 2")
        }
        #expect(firstDeliveries == ids, "each envelope delivered, in order")
        try await world.expectStatus("the acks were not recorded") { $0["envelopes"] as? Int == 0 }
        #expect(redelivered.isEmpty, "acked envelopes delivered again on the same connection: \(redelivered)")
        await bob.close()
    }

    // MARK: 11. Refusals

    @Test("refused sends: admin keys NOT_ALLOWED, over the size TOO_LARGE, unknown recipient, empty envelope and bad ids BAD_REQUEST")
    func refusals() async throws {
        let world = try RelayWorld(members: Self.pair, relayEnvironment: ["VALISED_LIMITS_MAX_ENVELOPE_BYTES": "1024"])
        let admin = try await QueueDevice(world: world, key: try world.adminTransportKey())
        #expect(admin.welcome.role == .admin)
        let adminSend = await admin.send(QueueFixture.id(), to: Self.bob)
        #expect(adminSend.isRefused(.notAllowed), "an admin's send: \(String(describing: adminSend.refusal))")
        var query = WireStatusQuery()
        query.nonce = Data(QueueFixture.bytes(16))
        query.ids = [Data(QueueFixture.id())]
        for request in [WireClientMessage.OneOf_Body.fetch(WireFetch()), .ack(WireAck()), .statusQuery(query)] {
            do {
                _ = try await admin.client.request(request)
                Issue.record("an admin's \(request) was answered")
            } catch {
                #expect(error.code == "relay-\(WireErrorCode.notAllowed)", "an admin's \(request): \(error)")
            }
        }
        await admin.close()

        let alice = try await QueueDevice(world: world, member: Self.alice)
        let cases: [(String, SendOutcome, WireErrorCode)] = [
            ("1025 bytes", await alice.send(QueueFixture.id(), to: Self.bob, envelope: QueueFixture.bytes(1025)), .tooLarge),
            ("unknown member", await alice.send(QueueFixture.id(), to: "mallory@jakarta"), .unknownRecipient),
            ("no recipient", await alice.send(QueueFixture.id(), to: ""), .unknownRecipient),
            ("empty envelope", await alice.send(QueueFixture.id(), to: Self.bob, envelope: []), .badRequest),
            ("15-byte id", await alice.send(QueueFixture.bytes(15), to: Self.bob), .badRequest),
            ("17-byte id", await alice.send(QueueFixture.bytes(17), to: Self.bob), .badRequest),
            ("no id", await alice.send([], to: Self.bob), .badRequest),
            ("unknown precedence", await alice.send(QueueFixture.id(), to: Self.bob, precedence: .UNRECOGNIZED(9)), .badRequest),
            ("unknown TTL class", await alice.send(QueueFixture.id(), to: Self.bob, ttl: .UNRECOGNIZED(9)), .badRequest),
        ]
        for (name, outcome, code) in cases {
            #expect(outcome.isRefused(code), "\(name): expected \(code), got \(String(describing: outcome.accepted)) \(String(describing: outcome.refusal))")
            #expect(outcome.refusal?.message.isEmpty == false, "\(name): the refusal says why")
        }
        #expect(cases[0].1.refusal?.message.contains("1024") == true, "TOO_LARGE names the limit: \(cases[0].1.refusal?.message ?? "")")
        #expect(cases[1].1.refusal?.message.contains("mallory@jakarta") == true)
        // The connection survives every refusal; exactly at the limit is accepted.
        let fits = QueueFixture.id()
        try await alice.sendAccepted(fits, to: Self.bob, envelope: QueueFixture.bytes(1024))
        #expect(try world.queuedEnvelopes() == 1, "nothing refused was stored")

        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        #expect(await bob.deliveries(exactly: 1).map(\.id) == [Data(fits)])
        await alice.close()
        await bob.close()
        #expect(world.relay.isRunning)
    }
}
