import Foundation

/// Funnels every write to the envelope store through one thread, and batches them: all the
/// envelopes queued while the previous commit ran become one transaction, so a busy relay
/// pays one fsync per batch, not per message. A lone envelope waits for no company: the
/// thread starts a commit as soon as it is free and something is queued.
///
/// Completions are called on the writer thread; they must only hand results on (to an
/// event loop), never block. A `CompletionBatching` hears when one commit's completions
/// begin and end, so that it can hand them on together.
public final class GroupCommitWriter: @unchecked Sendable {
    public typealias AcceptCompletion = @Sendable (Result<AcceptOutcome, StoreError>) -> Void
    public typealias CountCompletion = @Sendable (Result<Int, StoreError>) -> Void

    private enum Job {
        case accept(IncomingEnvelope, AcceptCompletion)
        case acknowledge(Mailbox, [MessageID], CountCompletion?)
        case expire(CountCompletion)
        case purge(Mailbox, CountCompletion)
    }

    /// Commit counters, for `valised status` and the benchmark (fsyncs per message). A
    /// transaction that both stored envelopes and recorded acknowledgements counts in both.
    public struct Counters: Sendable, Equatable {
        public var acceptCommits = 0
        public var acceptedEnvelopes = 0
        public var acknowledgeCommits = 0
        public var acknowledgedEnvelopes = 0
    }

    private let store: any EnvelopeStore
    private let clock: @Sendable () -> UInt64
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var stopping = false
    private var finished = false
    private var counters = Counters()
    private var thread: Thread?
    private let batching: (any CompletionBatching)?

    public init(store: any EnvelopeStore, clock: @escaping @Sendable () -> UInt64, batching: (any CompletionBatching)? = nil) {
        self.store = store
        self.clock = clock
        self.batching = batching
    }

    public func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "valise-store-writer"
        self.thread = thread
        thread.start()
    }

    /// Finishes what is queued, then stops the thread; returns when it has. New work after
    /// this fails at once. On a writer that was never started, the queued work fails too:
    /// every job is answered, none is dropped.
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        guard thread != nil else {
            let abandoned = queue
            queue.removeAll()
            condition.unlock()
            for job in abandoned { fail(job, StoreError(.failure, "the relay is shutting down")) }
            return
        }
        while !finished { condition.wait() }
        condition.unlock()
    }

    public var currentCounters: Counters {
        condition.lock()
        defer { condition.unlock() }
        return counters
    }

    public func accept(_ envelope: IncomingEnvelope, completion: @escaping AcceptCompletion) {
        enqueue(.accept(envelope, completion))
    }

    public func acknowledge(mailbox: Mailbox, ids: [MessageID], completion: CountCompletion? = nil) {
        enqueue(.acknowledge(mailbox, ids, completion))
    }

    public func expire(completion: @escaping CountCompletion) { enqueue(.expire(completion)) }

    public func purge(mailbox: Mailbox, completion: @escaping CountCompletion) { enqueue(.purge(mailbox, completion)) }

    private func enqueue(_ job: Job) {
        condition.lock()
        if stopping {
            condition.unlock()
            fail(job, StoreError(.failure, "the relay is shutting down"))
            return
        }
        queue.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let batch = takeBatch()
            condition.unlock()
            batching?.beginBatch()
            process(batch)
            batching?.endBatch()
        }
    }

    /// Envelope bytes in one commit, at most (a single larger envelope goes alone): this
    /// bounds what a commit adds to the write-ahead log, which the store's space reserve
    /// must cover, and keeps one commit's latency bounded.
    public static let maximumBatchBytes = 4 << 20

    /// The queued jobs up to the batch's byte bound. Called with the lock held.
    private func takeBatch() -> [Job] {
        var bytes = 0
        var end = 0
        for job in queue {
            if case .accept(let envelope, _) = job {
                if bytes > 0 && bytes + envelope.body.count > Self.maximumBatchBytes { break }
                bytes += envelope.body.count
            }
            end += 1
        }
        let batch = Array(queue[..<end])
        queue.removeFirst(end)
        return batch
    }

    private func process(_ batch: [Job]) {
        let now = clock()
        var accepts: [(IncomingEnvelope, AcceptCompletion)] = []
        var acks: [(AcknowledgeRequest, CountCompletion?)] = []
        var others: [Job] = []
        for job in batch {
            switch job {
            case .accept(let envelope, let completion): accepts.append((envelope, completion))
            case .acknowledge(let mailbox, let ids, let completion):
                acks.append((AcknowledgeRequest(mailbox: mailbox, ids: ids), completion))
            default: others.append(job)
            }
        }
        // Envelopes and acknowledgements of one batch share a transaction (one fsync).
        let (accepted, acknowledged) = accepts.isEmpty || acks.isEmpty
            ? (Result { () throws(StoreError) in accepts.isEmpty ? [] : try store.accept(accepts.map(\.0), now: now) },
               Result { () throws(StoreError) in acks.isEmpty ? [] : try store.acknowledge(acks.map(\.0), now: now) })
            : store.commit(accepting: accepts.map(\.0), acknowledging: acks.map(\.0), now: now)
        if !accepts.isEmpty {
            switch accepted {
            case .success(let outcomes):
                let stored = outcomes.count { if case .accepted(_, duplicate: false) = $0 { true } else { false } }
                count { $0.acceptCommits += 1; $0.acceptedEnvelopes += stored }
                for (index, outcome) in outcomes.enumerated() { accepts[index].1(.success(outcome)) }
            case .failure(let error):
                for (_, completion) in accepts { completion(.failure(error)) }
            }
        }
        if !acks.isEmpty {
            switch acknowledged {
            case .success(let deleted):
                count { $0.acknowledgeCommits += 1; $0.acknowledgedEnvelopes += deleted.reduce(0, +) }
                for (index, count) in deleted.enumerated() { acks[index].1?(.success(count)) }
            case .failure(let error):
                for (_, completion) in acks { completion?(.failure(error)) }
            }
        }
        for job in others {
            switch job {
            case .expire(let completion):
                completion(Result { () throws(StoreError) -> Int in try store.expire(now: now) })
            case .purge(let mailbox, let completion):
                completion(Result { () throws(StoreError) -> Int in try store.purge(mailbox: mailbox, now: now) })
            default:
                break
            }
        }
    }

    private func count(_ update: (inout Counters) -> Void) {
        condition.lock()
        update(&counters)
        condition.unlock()
    }

    private func fail(_ job: Job, _ error: StoreError) {
        switch job {
        case .accept(_, let completion): completion(.failure(error))
        case .acknowledge(_, _, let completion): completion?(.failure(error))
        case .expire(let completion), .purge(_, let completion): completion(.failure(error))
        }
    }
}

/// Told, on the writer thread, when one commit's completions begin and when they have all
/// been called: a relay gathers what they hand to each event loop and wakes each loop once
/// per commit instead of once per message.
public protocol CompletionBatching: Sendable {
    func beginBatch()
    func endBatch()
}
