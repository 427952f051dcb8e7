#if Postgres
import Foundation
import Testing
@testable import ValisePostgres
import ValiseStore

/// Announcements between nodes: what one node commits reaches the other's `changes()`
/// stream, and a lost LISTEN connection costs a rescan (`.everything`), never silence.
@Suite("PostgreSQL changes", .enabled(if: TestPostgres.isAvailable))
struct PostgresChangesTests {
    /// What a stream yields, read on a task of its own; tests wait for a condition on it
    /// with a bound (announcements cross the database asynchronously).
    final class Collector: Sendable {
        let changes = Locked<[QueueChange]>([])
        let task: Task<Void, Never>

        init(_ stream: AsyncStream<QueueChange>) {
            let changes = self.changes
            task = Task {
                for await change in stream { changes.withValue { $0.append(change) } }
            }
        }

        /// Waits (at most `seconds`) until the changes collected after `start` satisfy `condition`.
        func wait(from start: Int = 0, seconds: Double = 5, for condition: ([QueueChange]) -> Bool) async -> Bool {
            for _ in 0..<Int(seconds * 50) {
                if condition(Array(changes.current.dropFirst(start))) { return true }
                try? await Task.sleep(nanoseconds: 20_000_000)
            }
            return condition(Array(changes.current.dropFirst(start)))
        }

        var count: Int { changes.current.count }
    }

    /// Two nodes on one schema, and the second's stream once it listens (its first rescan seen).
    static func listening() async throws -> (PostgresEnvelopeStore, PostgresEnvelopeStore, Collector) {
        let schema = TestPostgres.freshSchema()
        let a = try TestPostgres.store(schema: schema)
        let b = try TestPostgres.store(schema: schema)
        let collector = Collector(b.changes())
        #expect(await collector.wait { $0.first == .everything })
        return (a, b, collector)
    }

    /// A mailbox name no other test uses: announcements are database-wide (one channel), so
    /// a stream hears every schema's, and other suites run at the same time.
    static func unique(_ name: String) -> String { name + "-" + UUID().uuidString.lowercased() }

    @Test("a commit on one node is announced on the other's stream, after the first rescan")
    func announcedAcrossNodes() async throws {
        let (a, b, collector) = try await Self.listening()
        defer { a.close(); b.close() }
        let start = collector.count
        let (alice, carol, field) = (Self.unique("alice"), Self.unique("carol"), Self.unique("field"))
        _ = try a.accept([envelope(alice, 1)], now: queueEpoch)
        let forwarded = IncomingEnvelope(mailbox: Mailbox(carol), id: messageID(2), precedence: .routine, ttl: .day, destination: field, body: [1])
        _ = try a.accept([forwarded], now: queueEpoch)
        #expect(await collector.wait(from: start) { $0.contains(.mailboxes([Mailbox(alice)])) && $0.contains(.destinations([field])) })
        // A reroute into the local mailbox announces it too.
        #expect(try a.reroute(mailbox: Mailbox(carol), to: nil, now: queueEpoch) == 1)
        #expect(await collector.wait(from: start) { $0.contains(.mailboxes([Mailbox(carol)])) })
        collector.task.cancel()
    }

    @Test("an acknowledgement announces nothing")
    func nothingForNothing() async throws {
        let store = try TestPostgres.store()
        defer { store.close() }
        let (alice, bob) = (Self.unique("alice"), Self.unique("bob"))
        _ = try store.accept([envelope(alice, 1)], now: queueEpoch)
        let collector = Collector(store.changes())
        #expect(await collector.wait { $0.first == .everything })
        #expect(try store.acknowledge(mailbox: Mailbox(alice), ids: [messageID(1)], now: queueEpoch) == 1)
        // A marker commit after it: when it arrives, anything the ack announced would have too.
        _ = try store.accept([envelope(bob, 2)], now: queueEpoch)
        #expect(await collector.wait { $0.contains(.mailboxes([Mailbox(bob)])) })
        #expect(!collector.changes.current.contains(.mailboxes([Mailbox(alice)])))
        collector.task.cancel()
    }

    @Test("the LISTEN connection killed: the stream rescans (.everything) and announcements come again")
    func listenConnectionKilled() async throws {
        let (a, b, collector) = try await Self.listening()
        defer { a.close(); b.close() }
        let start = collector.count
        #expect(try b.listener.terminateConnection())
        #expect(await collector.wait(from: start) { $0.contains(.everything) })
        let alice = Self.unique("alice")
        _ = try a.accept([envelope(alice, 1)], now: queueEpoch)
        #expect(await collector.wait(from: start) { $0.contains(.mailboxes([Mailbox(alice)])) })
        collector.task.cancel()
    }

    @Test("closing the store finishes its streams")
    func closeFinishes() async throws {
        let store = try TestPostgres.store()
        let stream = store.changes()
        store.close()
        var iterator = stream.makeAsyncIterator()
        var seen = 0
        while await iterator.next() != nil, seen < 10 { seen += 1 }
        #expect(seen < 10)
    }
}
#endif
