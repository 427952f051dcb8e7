import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import ValiseCrypto

/// Verifies and stores directory publishes on a thread of its own: never on an event loop,
/// never on the thread pool that serves the store (sends, deliveries), so a publish's
/// signature checks delay neither. Publishes wait in a queue per publishing key, served in
/// turn (`FairQueue`): the relay cannot know that an entry is a revocation before verifying
/// it, so one key's hundred queued publishes must not hold back another key's first by more
/// than the one being verified.
final class DirectoryPublisher: Sendable {
    /// One queued publish and who to tell.
    struct Job: Sendable {
        let entries: [Data]
        let checkpoint: Data
        /// Called on the publisher's thread.
        let completion: @Sendable (Result<RelayDirectory.Published, RelayError>) -> Void
    }

    private let directory: RelayDirectory
    private let counters: LimitCounters
    private let clock: @Sendable () -> UInt64
    /// Called on the publisher's thread with the entries a publish added and the position of
    /// the first, before the publish is answered: the nodes of a relay on a shared store hand
    /// them to the others (`SharedDirectoryLog`). Nil for a relay of one node.
    private let share: (@Sendable (_ entries: [[UInt8]], _ start: Int) -> Void)?
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private let queue = NIOLockedValueBox(FairQueue<AgreementPublicKey, Job>())

    init(
        directory: RelayDirectory, counters: LimitCounters, clock: @escaping @Sendable () -> UInt64,
        share: (@Sendable (_ entries: [[UInt8]], _ start: Int) -> Void)? = nil
    ) {
        self.directory = directory
        self.counters = counters
        self.clock = clock
        self.share = share
        thread.start()
    }

    /// Queues a publish by `key`. Each submission runs one job, the next in turn, which is
    /// not necessarily this one.
    func submit(from key: AgreementPublicKey, entries: [Data], checkpoint: Data, completion: @escaping @Sendable (Result<RelayDirectory.Published, RelayError>) -> Void) {
        queue.withLockedValue { $0.enqueue(Job(entries: entries, checkpoint: checkpoint, completion: completion), for: key) }
        thread.submit { [self] state in
            guard let job = queue.withLockedValue({ $0.dequeue() })?.item else { return }
            guard case .active = state else {
                job.completion(.failure(RelayError(.shuttingDown, code: "shutting-down", message: "the relay is shutting down")))
                return
            }
            job.completion(run(job))
        }
    }

    private func run(_ job: Job) -> Result<RelayDirectory.Published, RelayError> {
        var verifications = 0
        defer { counters.count(.directorySignaturesVerified, by: verifications) }
        do throws(RelayError) {
            let verified = try directory.verify(
                entries: job.entries.map { Array($0) }, checkpoint: Array(job.checkpoint), now: clock(), verifications: &verifications)
            // This thread is the only one that commits: the count before is the new entries' start.
            let before = directory.snapshot.count
            let published = try directory.commit(verified, now: clock())
            if let share, published.count > before {
                share(Array(directory.snapshot.encodedEntries[before..<published.count]), before)
            }
            return .success(published)
        } catch {
            return .failure(error)
        }
    }

    /// Finishes the publish under way; those still queued are answered SHUTTING_DOWN.
    func shutdown() async {
        try? await thread.shutdownGracefully()
    }
}
