import Foundation
import GRDB
import Testing
import ValiseClient
import ValiseCrypto

/// End-to-end messaging with real `valise` and `valised` processes: two missions, client
/// homes for alice@jakarta, bob@geneva and carol@geneva, a relay restarted mid-story.
@Suite("Messaging: send, sync, read, reply, rotate, revoke (real valise and valised)", .serialized)
struct MessagingTests {
    static let members = ["alice@jakarta", "bob@geneva", "carol@geneva"]

    /// The world plus the messaging commands, with receipts sent without delay.
    final class Story {
        let world: RelayWorld

        init(members: [String] = MessagingTests.members, relayEnvironment: [String: String] = [:]) throws {
            // The relay logs at its default level: what a seized disk would hold.
            world = try RelayWorld(members: members, relayEnvironment: relayEnvironment, relayLogLevel: "info")
        }

        /// Where the commands reach the relay (a relay under faketime replaces the world's).
        var relayAddress: String?

        @discardableResult
        func valise(_ member: String, _ arguments: [String], expect status: Int32 = 0, connect: Bool = true,
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> ValiseCLI.Result {
            var full = arguments + ["--home", world.path(member)]
            if connect { full += ["--relay", relayAddress ?? world.relay.address] }
            let result = try ValiseCLI.run(full, environment: ["VALISE_PASSPHRASE": world.passphrase, "VALISE_RECEIPT_DELAY": "0-0"])
            #expect(result.status == status, "valise \(arguments.joined(separator: " ")) for \(member): \(result.stderr)", sourceLocation: sourceLocation)
            return result
        }

        func json(_ member: String, _ arguments: [String], connect: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
            try world.json(valise(member, arguments + ["--json"], connect: connect, sourceLocation: sourceLocation))
        }

        @discardableResult
        func send(_ from: String, to: String, _ precedence: String, _ text: String, expect status: Int32 = 0) throws -> ValiseCLI.Result {
            try valise(from, ["send", "--to", to, "--precedence", precedence, text], expect: status)
        }

        func inbox(_ member: String) throws -> [[String: Any]] {
            try json(member, ["inbox"], connect: false)["messages"] as? [[String: Any]] ?? []
        }

        func sent(_ member: String) throws -> [[String: Any]] {
            try json(member, ["sent"], connect: false)["messages"] as? [[String: Any]] ?? []
        }

        func read(_ member: String, _ id: String) throws -> String {
            try json(member, ["read", id], connect: false)["text"] as? String ?? ""
        }

        func restartRelay() throws {
            #expect(world.relay.stop() == 0)
            world.relay = try RelayProcess(directory: world.path("relay"), logPath: world.path("relay-2.log"), logLevel: "info")
        }

        /// Everything each device holds that must never reach the relay: keys (raw and hex).
        func secrets(_ member: String) throws -> [[UInt8]] {
            let identity = try world.deviceIdentity(member)
            var keys: [SecretBytes] = [identity.storeKey.rawRepresentation]
            for pair in [identity.current] + identity.retired.map(\.keys) {
                keys += [pair.identity.seed, pair.transport.rawRepresentation]
            }
            return keys.flatMap { key -> [[UInt8]] in
                let raw = key.withUnsafeBytes { [UInt8]($0) }
                return [raw, Array(Hex.encode(raw).utf8)]
            }
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        !needle.isEmpty && haystack.firstRange(of: needle) != nil
    }

    /// The relay's queue files (database and write-ahead log), whole.
    static func queueBytes(_ world: RelayWorld) -> [UInt8] {
        ["queue.sqlite", "queue.sqlite-wal"].flatMap { name in
            (FileManager.default.contents(atPath: world.path("relay/\(name)")).map { [UInt8]($0) }) ?? []
        }
    }

    /// Every column of every row of the tables that hold messages.
    static func messageRows(_ world: RelayWorld) throws -> [[UInt8]] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: world.path("relay/queue.sqlite"), configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in
            try ["envelope", "message", "mailbox_usage"].flatMap { table in
                try Row.fetchAll(db, sql: "SELECT * FROM \(table)").map { row in
                    row.databaseValues.flatMap { value -> [UInt8] in
                        switch value.storage {
                        case .blob(let data): [UInt8](data)
                        case .string(let text): Array(text.utf8)
                        case .int64(let number): Array(String(number).utf8)
                        default: []
                        }
                    }
                }
            }
        }
    }

    @Test("bob offline: ROUTINE, PRIORITY, FLASH from alice; relay restart; FLASH read first, all three out of order; receipts; reply; nothing readable on the relay")
    func story() throws {
        let story = try Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        // Each device syncs once (publishing its prekeys), then bob goes offline.
        try story.valise(bob, ["sync"])
        try story.valise(alice, ["sync"])

        let texts = ["ROUTINE": "routine: the weekly consular report", "PRIORITY": "priority: visa list by noon", "FLASH": "flash: drill moved to 06:00"]
        for precedence in ["ROUTINE", "PRIORITY", "FLASH"] {
            let result = try story.send(alice, to: bob, precedence.lowercased(), texts[precedence]!)
            #expect(result.stdout.contains("Sent \(precedence) message"), "\(result.stdout)")
        }
        #expect(try story.sent(alice).map { $0["state"] as? String } == ["accepted", "accepted", "accepted"])

        // What the relay holds for bob: no text, and nothing that names or identifies alice.
        let rows = try Self.messageRows(story.world)
        #expect(rows.count == 3 + 3 + 1, "three envelopes, three accepted ids, one mailbox: \(rows.count)")
        let aliceIdentity = try story.world.deviceIdentity(alice).identityKey.publicKey.bytes
        for row in rows {
            let named = Self.contains(row, Array(alice.utf8))
            let keyed = Self.contains(row, aliceIdentity) || Self.contains(row, Array(Hex.encode(aliceIdentity).utf8))
            #expect(!named, "a queue row names the sender")
            #expect(!keyed, "a queue row holds the sender's identity key")
        }
        let queue = Self.queueBytes(story.world)
        for text in texts.values {
            let found = Self.contains(queue, Array(text.utf8))
            #expect(!found, "the queue holds a plaintext: \(text)")
        }

        try story.restartRelay()
        let synced = try story.json(bob, ["sync"])
        #expect(synced["received"] as? Int == 3)
        let inbox = try story.inbox(bob)
        #expect(inbox.map { $0["precedence"] as? String } == ["FLASH", "PRIORITY", "ROUTINE"], "delivery order: \(inbox)")
        #expect(inbox.allSatisfy { $0["from"] as? String == alice && $0["read"] as? Bool == false })
        // Sent ROUTINE, PRIORITY, FLASH in one session, received in reverse: each decrypts.
        for message in inbox {
            let id = try #require(message["id"] as? String)
            #expect(try story.read(bob, String(id.prefix(8))) == texts[message["precedence"] as? String ?? ""])
        }
        #expect(try story.inbox(bob).allSatisfy { $0["read"] as? Bool == true })

        // Bob's receipts went at the end of his sync (no delay here); alice learns of them.
        try story.valise(alice, ["sync"])
        #expect(try story.sent(alice).map { $0["state"] as? String } == ["delivered", "delivered", "delivered"])

        // A reply, in the session alice started.
        try story.send(bob, to: alice, "immediate", "confirmed: 06:00")
        #expect(try story.json(alice, ["sync"])["received"] as? Int == 1)
        let reply = try #require(try story.inbox(alice).first)
        #expect(reply["from"] as? String == bob && reply["precedence"] as? String == "IMMEDIATE")
        #expect(try story.read(alice, reply["id"] as? String ?? "") == "confirmed: 06:00")

        // A second sync finds nothing new and shows nothing twice.
        #expect(try story.json(bob, ["sync"])["received"] as? Int == 0)
        #expect(try story.inbox(bob).count == 3)

        // No secret key of either device, in raw bytes or hex, anywhere in the relay's files
        // or logs; no message text or sender's name in its logs.
        _ = story.world.relay.stop()
        let logs = ["relay.log", "relay-2.log"].map { (FileManager.default.contents(atPath: story.world.path($0)).map { [UInt8]($0) }) ?? [] }
        let files = Self.queueBytes(story.world) + logs.flatMap { $0 }
        for secret in try story.secrets(alice) + story.secrets(bob) {
            let found = Self.contains(files, secret)
            #expect(!found, "a device's secret key is in the relay's files")
        }
        for (index, log) in logs.enumerated() {
            for needle in Array(texts.values) + ["confirmed: 06:00", alice, bob] {
                let found = Self.contains(log, Array(needle.utf8))
                #expect(!found, "relay log \(index + 1) holds '\(needle)'")
            }
            // An admitted connection's lines name its role, never its address.
            let admitted = String(decoding: log, as: UTF8.self).split(separator: "\n").filter { $0.contains("client=device") }
            #expect(!admitted.contains { $0.contains("peer=") }, "relay log \(index + 1) names an admitted device's address")
        }
    }

    @Test("sending while the relay is down: the message waits in the outbox, status shows it, the next sync sends it")
    func offlineSend() throws {
        let story = try Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try story.valise(bob, ["sync"])
        try story.valise(alice, ["sync"])
        #expect(story.world.relay.stop() == 0)

        let result = try story.send(alice, to: bob, "priority", "written on the plane")
        #expect(result.stdout.contains("waits in the outbox"), "\(result.stdout)")
        #expect(try story.sent(alice).map { $0["state"] as? String } == ["waiting"])
        let status = try story.json(alice, ["status"])
        #expect(status["outboxWaiting"] as? Int == 1)
        #expect((status["relay"] as? String)?.hasPrefix("unreachable") == true, "\(status)")

        story.world.relay = try RelayProcess(directory: story.world.path("relay"), logPath: story.world.path("relay-2.log"), logLevel: "info")
        #expect(try story.json(alice, ["sync"])["sent"] as? Int == 1)
        #expect(try story.json(bob, ["sync"])["received"] as? Int == 1)
        let message = try #require(try story.inbox(bob).first)
        #expect(try story.read(bob, message["id"] as? String ?? "") == "written on the plane")
    }

    @Test("an admin rotates bob's keys: alice's next message says so plainly and still reaches him; revoked carol is refused and her device wipes its keys")
    func rotationAndRevocation() throws {
        let story = try Story()
        let world = story.world
        let (alice, bob, carol) = ("alice@jakarta", "bob@geneva", "carol@geneva")
        for member in [bob, alice, carol] { try story.valise(member, ["sync"]) }
        try story.send(alice, to: bob, "routine", "before the rotation")
        try story.valise(bob, ["sync"])

        let rotation = try world.json(world.valise(["keys", "rotate", "--home", world.path(bob), "--json"]))
        let newFingerprint = try #require(rotation["newFingerprint"] as? String)
        try world.valise(["admin", "rotate", bob, world.path("\(bob)/rotation.request"), "--expect-fingerprint", newFingerprint] + world.org)
        try world.valise(["admin", "publish", "--relay", "hq", "--relay-address", world.relay.address] + world.org)
        // Bob's device completes the rotation (its new transport key is the admitted one).
        let bobSync = try story.valise(bob, ["sync"])
        #expect(bobSync.stderr.contains("Key rotation completed"), "\(bobSync.stderr)")
        // A rotated-out key is routine, never a warning (issue 18).
        #expect(!world.relay.log.contains("refused a key that is not a current device or admin key"), "\(world.relay.log)")

        let warned = try story.send(alice, to: bob, "routine", "after the rotation")
        #expect(warned.stderr.contains("bob@geneva's keys have changed") && warned.stderr.contains(newFingerprint), "\(warned.stderr)")
        #expect(try story.json(bob, ["sync"])["received"] as? Int == 1)
        let latest = try #require(try story.inbox(bob).last)
        #expect(try story.read(bob, latest["id"] as? String ?? "") == "after the rotation")
        // Told once: the next message to bob is sent without a warning.
        let quiet = try story.send(alice, to: bob, "routine", "again")
        #expect(!quiet.stderr.contains("keys have changed"), "\(quiet.stderr)")

        try world.revoke(carol)
        try story.valise(alice, ["sync"])
        let refused = try story.send(alice, to: carol, "flash", "are you there?", expect: 64)
        #expect(refused.stderr.contains("carol@geneva was revoked"), "\(refused.stderr)")
        #expect(try story.sent(alice).allSatisfy { $0["to"] as? String != carol }, "nothing was written for carol")
        let wiped = try story.valise(carol, ["sync"], expect: 5)
        #expect(wiped.stderr.contains("the organisation revoked this device"), "\(wiped.stderr)")
        #expect(!FileManager.default.fileExists(atPath: world.path("\(carol)/device.key")))
    }
}
