import Testing
import ValiseTestSupport
@testable import ValiseStore

/// SQLite only: the observer is the writer's, the same over any store (the writer's batches on
/// both stores are in QueueGroupCommitTests and QueueRerouteTests).
///
/// The writer's CommitObserver (the relay's commit metrics): one call per commit that wrote
/// something, with the requests it carried and a duration that includes the commit.
@Suite("Queue: the group commit writer's observer")
struct QueueCommitObserverTests {
    let file = QueueFile()

    final class Observations: CommitObserver {
        let seen = Locked<[(requests: Int, seconds: Double)]>([])
        func committed(requests: Int, seconds: Double) { seen.withValue { $0.append((requests, seconds)) } }
    }

    @Test("every accept and acknowledgement is counted in exactly one commit's requests; expiry alone reports nothing")
    func requestsAndDurations() throws {
        let observations = Observations()
        let writer = GroupCommitWriter(store: try file.open(), clock: { queueEpoch }, observer: observations)
        writer.start()
        let done = CompletionCounter()
        for i in 0..<25 { writer.accept(envelope("m", i, .routine)) { _ in done.signal() } }
        #expect(done.wait(for: 25))
        writer.acknowledge(mailbox: Mailbox("m"), ids: [messageID(0), messageID(1)]) { _ in done.signal() }
        #expect(done.wait(for: 1))
        writer.expire { _ in done.signal() }
        #expect(done.wait(for: 1))
        writer.stop()

        let seen = observations.seen.current
        #expect(seen.map(\.requests).reduce(0, +) == 26, "25 accepts and one acknowledgement list")
        #expect(seen.allSatisfy { $0.requests >= 1 && $0.seconds > 0 && $0.seconds < 60 })
        #expect(seen.count == writer.currentCounters.acceptCommits + writer.currentCounters.acknowledgeCommits)
    }
}
