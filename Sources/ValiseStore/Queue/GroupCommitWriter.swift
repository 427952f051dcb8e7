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
    public typealias ExpiryCompletion = @Sendable (Result<ExpiryCounts, StoreError>) -> Void
    public typealias MailboxesCompletion = @Sendable (Result<[Mailbox], StoreError>) -> Void

    private enum Job {
        case accept(IncomingEnvelope, AcceptCompletion)
        case acknowledge(Mailbox, [MessageID], CountCompletion?)
        case completeForwarding([ForwardCompletion], CountCompletion?)
        case reroute(RerouteRequest, CountCompletion)
        case expire(ExpiryCompletion)
        case purge(Mailbox, CountCompletion)
        case deleteStalePrekeys([Mailbox], PrekeyOwnership, MailboxesCompletion)
    }

    /// Commit counters, for `valised status` and the benchmark (fsyncs per message). A
    /// transaction that both stored envelopes and recorded acknowledgements counts in both.
    public struct Counters: Sendable, Equatable {
        public var acceptCommits = 0
        public var acceptedEnvelopes = 0
        public var acknowledgeCommits = 0
        public var acknowledgedEnvelopes = 0
        /// Forwarded envelopes deleted on their destination's final answer.
        public var completedForwards = 0

        public init() {}
    }

    private let store: any EnvelopeStore
    /// Where prekeys are kept, if this writer deletes them too (the same store, for a relay).
    private let prekeys: (any PrekeyStore)?
    private let clock: @Sendable () -> UInt64
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var stopping = false
    private var finished = false
    private var counters = Counters()
    private var thread: Thread?
    private let batching: (any CompletionBatching)?
    private let observer: (any CommitObserver)?

    public init(
        store: any EnvelopeStore, prekeys: (any PrekeyStore)? = nil, clock: @escaping @Sendable () -> UInt64,
        batching: (any CompletionBatching)? = nil, observer: (any CommitObserver)? = nil
    ) {
        self.store = store
        self.prekeys = prekeys
        self.clock = clock
        self.batching = batching
        self.observer = observer
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

    /// Records destination relays' final answers (`EnvelopeStore.completeForwarding`), in
    /// the next batch's transaction; the completion gets how many envelopes were deleted.
    public func completeForwarding(_ completions: [ForwardCompletion], completion: CountCompletion? = nil) {
        enqueue(.completeForwarding(completions, completion))
    }

    /// Moves a recipient's envelopes to another queue (`EnvelopeStore.reroute`), in the
    /// next batch's transaction, after the batch's accepts (so that those follow too).
    public func reroute(mailbox: Mailbox, to destination: String?, completion: @escaping CountCompletion) {
        enqueue(.reroute(RerouteRequest(mailbox: mailbox, destination: destination), completion))
    }

    public func expire(completion: @escaping CountCompletion) {
        enqueue(.expire { result in completion(result.map(\.total)) })
    }

    /// An expiry sweep that tells local expiries from each forwarding queue's.
    public func expireCounts(completion: @escaping ExpiryCompletion) { enqueue(.expire(completion)) }

    public func purge(mailbox: Mailbox, completion: @escaping CountCompletion) { enqueue(.purge(mailbox, completion)) }

    /// Deletes the prekeys that the mailboxes' members' current identity keys did not sign
    /// (`PrekeyStore.deleteStalePrekeys`), after the batch's other work; the completion gets
    /// the mailboxes that lost all of them.
    public func deleteStalePrekeys(_ mailboxes: [Mailbox], current: PrekeyOwnership, completion: @escaping MailboxesCompletion) {
        enqueue(.deleteStalePrekeys(mailboxes, current, completion))
    }

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
        var accepts: [AcceptCompletion] = []
        var acks: [CountCompletion?] = []
        var completions: [CountCompletion?] = []
        var reroutes: [CountCompletion] = []
        var work = CommitBatch()
        var others: [Job] = []
        for job in batch {
            switch job {
            case .accept(let envelope, let completion):
                work.envelopes.append(envelope)
                accepts.append(completion)
            case .acknowledge(let mailbox, let ids, let completion):
                work.acknowledgements.append(AcknowledgeRequest(mailbox: mailbox, ids: ids))
                acks.append(completion)
            case .completeForwarding(let list, let completion):
                work.completions.append(list)
                completions.append(completion)
            case .reroute(let request, let completion):
                work.reroutes.append(request)
                reroutes.append(completion)
            case .expire, .purge, .deleteStalePrekeys:
                others.append(job)
            }
        }
        // Everything of one batch shares a transaction (one fsync) where the store can.
        let started = ContinuousClock.now
        let result = store.commit(work, now: now)
        let requests = work.envelopes.count + work.acknowledgements.count + work.completions.count + work.reroutes.count
        if let observer, requests > 0 {
            let elapsed = (ContinuousClock.now - started).components
            observer.committed(requests: requests, seconds: Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
        }
        if !accepts.isEmpty {
            switch result.accepted {
            case .success(let outcomes):
                let stored = outcomes.count { if case .accepted(_, duplicate: false) = $0 { true } else { false } }
                count { $0.acceptCommits += 1; $0.acceptedEnvelopes += stored }
                for (index, outcome) in outcomes.enumerated() { accepts[index](.success(outcome)) }
            case .failure(let error):
                for completion in accepts { completion(.failure(error)) }
            }
        }
        if !acks.isEmpty {
            if case .success(let deleted) = result.acknowledged {
                count { $0.acknowledgeCommits += 1; $0.acknowledgedEnvelopes += deleted.reduce(0, +) }
            }
            answer(acks, with: result.acknowledged)
        }
        if !completions.isEmpty {
            if case .success(let deleted) = result.completed { count { $0.completedForwards += deleted.reduce(0, +) } }
            answer(completions, with: result.completed)
        }
        answer(reroutes, with: result.rerouted)
        for job in others {
            switch job {
            case .expire(let completion):
                completion(Result { () throws(StoreError) -> ExpiryCounts in try store.expireCounts(now: now) })
            case .purge(let mailbox, let completion):
                completion(Result { () throws(StoreError) -> Int in try store.purge(mailbox: mailbox, now: now) })
            case .deleteStalePrekeys(let mailboxes, let current, let completion):
                guard let prekeys else {
                    completion(.failure(StoreError(.failure, "this writer's store keeps no prekeys")))
                    continue
                }
                completion(Result { () throws(StoreError) -> [Mailbox] in try prekeys.deleteStalePrekeys(mailboxes, current: current) })
            default:
                break
            }
        }
    }

    /// Each caller's count, or the failure to all of them.
    private func answer(_ completions: [CountCompletion?], with result: Result<[Int], StoreError>) {
        switch result {
        case .success(let counts):
            for (index, count) in counts.enumerated() { completions[index]?(.success(count)) }
        case .failure(let error):
            for completion in completions { completion?(.failure(error)) }
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
        case .acknowledge(_, _, let completion), .completeForwarding(_, let completion): completion?(.failure(error))
        case .reroute(_, let completion), .purge(_, let completion): completion(.failure(error))
        case .expire(let completion): completion(.failure(error))
        case .deleteStalePrekeys(_, _, let completion): completion(.failure(error))
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
