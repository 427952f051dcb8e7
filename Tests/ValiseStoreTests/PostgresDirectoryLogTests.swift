#if Postgres
import Foundation
import Testing
import ValisePostgres
import ValiseStore

/// The directory log two nodes share: appended from either, stored once, gapless, read back
/// in order, announced when it grows.
@Suite("PostgreSQL shared directory log", .enabled(if: TestPostgres.isAvailable))
struct PostgresDirectoryLogTests {
    /// Stand-ins for entries' canonical bytes (the store keeps bytes; nodes verify them).
    func entry(_ n: Int) -> [UInt8] { [UInt8(n >> 8), UInt8(n & 255)] + bodyBytes(n, count: 200 + n % 50) }

    func entries(_ range: Range<Int>) -> [[UInt8]] { range.map(entry) }

    @Test("entries appended from two nodes are stored once and read back in order; a gap is refused, changing nothing")
    func appendFromTwoNodes() throws {
        let (first, second) = try TestPostgres.twoNodes()
        defer { first.close(); second.close() }
        #expect(try first.directoryEntries(from: 0, limit: 10).isEmpty)
        #expect(try first.appendDirectoryEntries(entries(0..<3), from: 0) == 3)
        // The same entries again, from the other node, overlapping: only the new one counts.
        #expect(try second.appendDirectoryEntries(entries(1..<4), from: 1) == 1)
        #expect(try second.appendDirectoryEntries(entries(0..<4), from: 0) == 0)
        #expect(throws: StoreError.self) { try first.appendDirectoryEntries(entries(5..<6), from: 5) }
        #expect(try first.directoryEntries(from: 0, limit: 10) == entries(0..<4))
        #expect(try second.directoryEntries(from: 2, limit: 1) == entries(2..<3))
        #expect(try second.directoryEntries(from: 4, limit: 10).isEmpty)
        #expect(try second.directoryEntries(from: 0, limit: 0).isEmpty)
        // The next position is accepted.
        #expect(try first.appendDirectoryEntries(entries(4..<6), from: 4) == 2)
        #expect(try second.directoryEntries(from: 0, limit: 100) == entries(0..<6))
    }

    @Test("an oversized or empty entry, too many entries, or a negative position is refused, changing nothing")
    func bounds() throws {
        let (first, second) = try TestPostgres.twoNodes()
        defer { first.close(); second.close() }
        let oversized = [UInt8](repeating: 1, count: SharedDirectoryLimits.maximumEntryByteCount + 1)
        #expect(throws: StoreError.self) { try first.appendDirectoryEntries([entry(0), oversized], from: 0) }
        #expect(throws: StoreError.self) { try first.appendDirectoryEntries([entry(0), []], from: 0) }
        let many = entries(0..<(SharedDirectoryLimits.maximumEntriesPerCall + 1))
        #expect(throws: StoreError.self) { try first.appendDirectoryEntries(many, from: 0) }
        #expect(throws: StoreError.self) { try first.appendDirectoryEntries([entry(0)], from: -1) }
        #expect(throws: StoreError.self) { try first.directoryEntries(from: -1, limit: 1) }
        #expect(try second.directoryEntries(from: 0, limit: 10).isEmpty)
        // A read returns at most a call's worth, however large the limit asked.
        #expect(try first.appendDirectoryEntries(Array(many.prefix(SharedDirectoryLimits.maximumEntriesPerCall)), from: 0) == 1_000)
        #expect(try first.appendDirectoryEntries([many[1_000]], from: 1_000) == 1)
        #expect(try second.directoryEntries(from: 0, limit: Int.max).count == SharedDirectoryLimits.maximumEntriesPerCall)
        #expect(try second.directoryEntries(from: 1_000, limit: Int.max) == [many[1_000]])
    }

    @Test("nodes appending the same log at once store each entry once, with no gap")
    func concurrentAppends() throws {
        let (first, second) = try TestPostgres.twoNodes()
        defer { first.close(); second.close() }
        let log = entries(0..<200)
        let added = Locked(0)
        let done = CompletionCounter()
        // Six appenders, three a node, each walking the whole log in chunks of its own
        // size; an append refused for a gap (another's chunk not yet committed) is retried.
        for appender in 0..<6 {
            let store = appender % 2 == 0 ? first : second
            let chunk = 7 + appender * 5
            Thread {
                defer { done.signal() }
                var start = 0
                for _ in 0..<10_000 {
                    guard start < log.count else { return }
                    let end = min(start + chunk, log.count)
                    guard let new = try? store.appendDirectoryEntries(Array(log[start..<end]), from: start) else {
                        // Only a gap is refused here: go back to what is stored.
                        start = (try? store.directoryEntries(from: 0, limit: 1_000).count) ?? start
                        continue
                    }
                    added.withValue { $0 += new }
                    start = end
                }
            }.start()
        }
        #expect(done.wait(for: 6, seconds: 120))
        #expect(added.current == log.count)
        #expect(try first.directoryEntries(from: 0, limit: 1_000) == log)
    }

    @Test("an append that adds entries is announced to every node as a directory change")
    func announced() async throws {
        let (first, second) = try TestPostgres.twoNodes()
        defer { first.close(); second.close() }
        try await AnnouncementWatcher.watching(schema: first.database.configuration.schema) { (watcher: AnnouncementWatcher) async throws in
            #expect(try first.appendDirectoryEntries(entries(0..<2), from: 0) == 2)
            #expect(try await watcher.changesSoFar().contains(.directory))
        }
        #expect(try second.appendDirectoryEntries(entries(0..<2), from: 0) == 0)
    }
}
#endif
