import Foundation

/// Funnels every write to the envelope store through one thread, and batches them: all the
/// envelopes queued while the previous commit ran become one transaction, so a busy relay
/// pays one fsync per batch, not per message. A lone envelope waits for no company: the
/// thread starts a commit as soon as it is free and something is queued.
///
/// Completions are called on the writer thread; they must only hand results on (to an
/// event loop), never block.
public final class GroupCommitWriter: @unchecked Sendable {
    public typealias AcceptCompletion = @Sendable (Result<AcceptOutcome, StoreError>) -> Void
    public typealias CountCompletion = @Sendable (Result<Int, StoreError>) -> Void

    private enum Job {
        case accept(IncomingEnvelope, AcceptCompletion)
        case acknowledge(Mailbox, [MessageID], CountCompletion?)
        case expire(CountCompletion)
        case purge(Mailbox, CountCompletion)
    }

    /// Commit counters, for `valised status` and the benchmark (fsyncs per message).
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

    public init(store: any EnvelopeStore, clock: @escaping @Sendable () -> UInt64) {
        self.store = store
        self.clock = clock
    }

    public func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "valise-store-writer"
        self.thread = thread
        thread.start()
    }

    /// Finishes what is queued, then stops the thread; returns when it has.
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished && thread != nil { condition.wait() }
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
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            condition.unlock()
            process(batch)
        }
    }

    private func process(_ batch: [Job]) {
        let now = clock()
        var accepts: [(IncomingEnvelope, AcceptCompletion)] = []
        var acks: [Mailbox: ([MessageID], [CountCompletion])] = [:]
        var others: [Job] = []
        for job in batch {
            switch job {
            case .accept(let envelope, let completion): accepts.append((envelope, completion))
            case .acknowledge(let mailbox, let ids, let completion):
                acks[mailbox, default: ([], [])].0 += ids
                if let completion { acks[mailbox, default: ([], [])].1.append(completion) }
            default: others.append(job)
            }
        }
        if !accepts.isEmpty {
            do {
                let outcomes = try store.accept(accepts.map(\.0), now: now)
                count { $0.acceptCommits += 1; $0.acceptedEnvelopes += accepts.count }
                for (index, outcome) in outcomes.enumerated() { accepts[index].1(.success(outcome)) }
            } catch {
                for (_, completion) in accepts { completion(.failure(error)) }
            }
        }
        for (mailbox, (ids, completions)) in acks {
            let result = Result { () throws(StoreError) -> Int in try store.acknowledge(mailbox: mailbox, ids: ids, now: now) }
            count { $0.acknowledgeCommits += 1; $0.acknowledgedEnvelopes += ids.count }
            for completion in completions { completion(result) }
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
