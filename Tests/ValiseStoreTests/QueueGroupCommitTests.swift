import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

/// The tests where the store answers for the batch (one transaction, each completion's own
/// result, visibility to another store on the same data) run on both stores; those about the
/// writer alone (batch hooks, stop) run on SQLite only.
@Suite("Queue: group commit writer")
struct QueueGroupCommitTests {
    let file = QueueFile()

    /// What one completion saw: its result, and whether a separate store on the same file
    /// could already read the envelope when the completion ran.
    struct Seen: Sendable {
        let id: MessageID
        let result: Result<AcceptOutcome, StoreError>
        let visible: Bool
    }

    @Test("concurrent accepts from several threads all complete once, each only after it is readable elsewhere", arguments: StoreKind.allCases)
    func concurrentAccepts(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let observer = try queue.open()
        let writer = GroupCommitWriter(store: store, clock: { queueEpoch })
        writer.start()
        let seen = Locked<[Seen]>([])
        let done = CompletionCounter()
        let threads = 4, perThread = 30

        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for i in 0..<perThread {
                let incoming = envelope("m\(thread % 2)", thread * 1000 + i, Precedence(rawValue: i % 4)!)
                writer.accept(incoming) { result in
                    let visible = (try? observer.state(of: incoming.id))?.state == .pending
                    seen.withValue { $0.append(Seen(id: incoming.id, result: result, visible: visible)) }
                    done.signal()
                }
            }
        }
        #expect(done.wait(for: threads * perThread))
        writer.stop()

        let all = seen.current
        #expect(all.count == threads * perThread)
        #expect(Set(all.map(\.id)).count == threads * perThread)
        #expect(all.allSatisfy { (try? $0.result.get()) == fresh(queueEpoch) })
        #expect(all.allSatisfy { $0.visible })
        #expect(try observer.statistics(now: queueEpoch).count == threads * perThread)
        // Per mailbox and precedence, the queue holds each thread's envelopes in its order.
        for thread in 0..<threads {
            let mine = try observer.queuedIDs("m\(thread % 2)").filter { id in (0..<perThread).contains { messageID(thread * 1000 + $0) == id } }
            let expected = Precedence.allCases.reversed().flatMap { p in (0..<perThread).filter { $0 % 4 == p.rawValue }.map { messageID(thread * 1000 + $0) } }
            #expect(mine == expected)
        }
        let counters = writer.currentCounters
        #expect(counters.acceptedEnvelopes == threads * perThread)
        #expect(counters.acceptCommits >= 1 && counters.acceptCommits <= threads * perThread)
    }

    /// Records what the writer tells it, and what completions ran between.
    final class BatchLog: CompletionBatching, @unchecked Sendable {
        let events = Locked<[String]>([])
        func beginBatch() { events.withValue { $0.append("begin") } }
        func endBatch() { events.withValue { $0.append("end") } }
    }

    @Test("a CompletionBatching hears the start and end of every commit's completions, with the completions between")
    func batchHooks() throws {
        let log = BatchLog()
        let writer = GroupCommitWriter(store: try file.open(), clock: { queueEpoch }, batching: log)
        writer.start()
        let done = CompletionCounter()
        for i in 0..<20 {
            writer.accept(envelope("m", i, .routine)) { _ in
                log.events.withValue { $0.append("done") }
                done.signal()
            }
        }
        #expect(done.wait(for: 20))
        writer.stop()
        let events = log.events.current
        #expect(events.count { $0 == "done" } == 20)
        // begin (done)+ end, repeated: no completion outside a bracket, none empty.
        var open = false, sinceBegin = 0
        for event in events {
            switch event {
            case "begin": #expect(!open); open = true; sinceBegin = 0
            case "end": #expect(open && sinceBegin > 0); open = false
            default: #expect(open); sinceBegin += 1
            }
        }
        #expect(!open)
    }

    @Test("envelopes queued while the writer is busy become one transaction: fewer commits than envelopes", arguments: StoreKind.allCases)
    func batching(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let gated = GatedStore(try queue.open())
        let writer = GroupCommitWriter(store: gated, clock: { queueEpoch })
        writer.start()
        let results = Locked<[MessageID: [Result<AcceptOutcome, StoreError>]]>([:])
        let done = CompletionCounter()
        @Sendable func submit(_ incoming: IncomingEnvelope) {
            writer.accept(incoming) { result in
                results.withValue { $0[incoming.id, default: []].append(result) }
                done.signal()
            }
        }

        gated.arm()
        submit(envelope("a", 0))
        try #require(gated.waitUntilHeld())
        // The writer is inside the first commit: everything submitted now must wait for it.
        let threads = 4, perThread = 10
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for i in 0..<perThread { submit(envelope("a", 1 + thread * perThread + i)) }
        }
        #expect(results.current.isEmpty)
        gated.release()
        #expect(done.wait(for: 1 + threads * perThread))
        writer.stop()

        let total = 1 + threads * perThread
        #expect(results.current.count == total)
        #expect(results.current.values.allSatisfy { $0.count == 1 })
        #expect(gated.acceptBatches.map(\.count) == [1, threads * perThread])
        let counters = writer.currentCounters
        #expect(counters.acceptCommits == 2)
        #expect(counters.acceptedEnvelopes == total)
        #expect(counters.acceptCommits < counters.acceptedEnvelopes)
        #expect(try gated.queued("a").count == total)
    }

    @Test("a quota refusal in a batch does not roll back the batch's other envelopes", arguments: StoreKind.allCases)
    func refusalInBatch(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let gated = GatedStore(try queue.open(limits: limits(messages: 2)))
        let writer = GroupCommitWriter(store: gated, clock: { queueEpoch })
        writer.start()
        let results = Locked<[MessageID: AcceptOutcome]>([:])
        let done = CompletionCounter()
        @Sendable func submit(_ incoming: IncomingEnvelope) {
            writer.accept(incoming) { result in
                if case .success(let outcome) = result { results.withValue { $0[incoming.id] = outcome } }
                done.signal()
            }
        }
        gated.arm()
        submit(envelope("z", 0))
        try #require(gated.waitUntilHeld())
        for n in 1...3 { submit(envelope("a", n)) }
        submit(envelope("b", 4))
        gated.release()
        #expect(done.wait(for: 5))
        writer.stop()

        #expect(gated.acceptBatches.map(\.count) == [1, 4])
        #expect(results.current == [
            messageID(0): fresh(queueEpoch), messageID(1): fresh(queueEpoch), messageID(2): fresh(queueEpoch),
            messageID(3): .refused(.mailboxFull), messageID(4): fresh(queueEpoch),
        ])
        #expect(try gated.queuedIDs("a") == [messageID(1), messageID(2)])
        #expect(try gated.queuedIDs("b") == [messageID(4)])
        #expect(try gated.state(of: messageID(3)) == nil)
    }

    @Test("accepts and acknowledgements interleaved from several threads keep the queue consistent", arguments: StoreKind.allCases)
    func interleaved(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let clock = Locked<UInt64>(queueEpoch)
        let writer = GroupCommitWriter(store: store, clock: { clock.current })
        writer.start()
        let acked = CompletionCounter()
        let ackResults = Locked<[Result<Int, StoreError>]>([])
        let threads = 4, perThread = 20

        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let mailbox = thread < 2 ? "shared" : "own\(thread)"
            for i in 0..<perThread {
                let incoming = envelope(mailbox, thread * 1000 + i)
                let accepted = DispatchSemaphore(value: 0)
                writer.accept(incoming) { _ in accepted.signal() }
                accepted.wait()
                clock.withValue { $0 += 1 }
                // Every other one is delivered; some acks also name an unknown id.
                guard i % 2 == 0 else { continue }
                let ids = i % 4 == 0 ? [incoming.id, messageID(-thread * 1000 - i)] : [incoming.id]
                writer.acknowledge(mailbox: Mailbox(mailbox), ids: ids) { result in
                    ackResults.withValue { $0.append(result) }
                    acked.signal()
                }
            }
        }
        #expect(acked.wait(for: threads * perThread / 2))
        writer.stop()

        #expect(ackResults.current.allSatisfy { if case .success = $0 { true } else { false } })
        let now = clock.current
        for thread in 0..<threads {
            let mailbox = thread < 2 ? "shared" : "own\(thread)"
            let mine = (0..<perThread).map { messageID(thread * 1000 + $0) }
            let states = try store.states(of: mine)
            for (i, id) in mine.enumerated() {
                #expect(states[id]?.state == (i % 2 == 0 ? .delivered : .pending), "thread \(thread) envelope \(i)")
            }
            let queued = try store.queuedIDs(mailbox, now: now).filter { mine.contains($0) }
            #expect(queued == mine.enumerated().filter { $0.offset % 2 == 1 }.map(\.element))
        }
        let statistics = try store.statistics(now: now)
        #expect(statistics.count == threads * perThread / 2)
        #expect(statistics.remembered == [.pending: threads * perThread / 2, .delivered: threads * perThread / 2])
        #expect(statistics.mailboxes == 3)
        #expect(writer.currentCounters.acceptedEnvelopes == threads * perThread)
    }

    @Test("each acknowledgement's completion reports its own count, even when acks share a batch", arguments: StoreKind.allCases)
    func ackCountsPerCompletion(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let gated = GatedStore(try queue.open())
        _ = try gated.inner.accept([envelope("a", 1), envelope("a", 2), envelope("a", 3)], now: queueEpoch)
        let writer = GroupCommitWriter(store: gated, clock: { queueEpoch + 1 })
        writer.start()
        let counts = Locked<[String: Int]>([:])
        let done = CompletionCounter()
        gated.arm()
        writer.accept(envelope("z", 9)) { _ in done.signal() }
        try #require(gated.waitUntilHeld())
        writer.acknowledge(mailbox: Mailbox("a"), ids: [messageID(1)]) { result in
            counts.withValue { $0["first"] = try? result.get() }
            done.signal()
        }
        writer.acknowledge(mailbox: Mailbox("a"), ids: [messageID(2), messageID(404)]) { result in
            counts.withValue { $0["second"] = try? result.get() }
            done.signal()
        }
        gated.release()
        #expect(done.wait(for: 3))
        writer.stop()

        #expect(try gated.queuedIDs("a", now: queueEpoch + 1) == [messageID(3)])
        #expect(counts.current == ["first": 1, "second": 1])
    }

    @Test("stop() finishes the work queued before it, then fails new work with a clear error")
    func stopDrains() throws {
        let gated = GatedStore(try file.open())
        let writer = GroupCommitWriter(store: gated, clock: { queueEpoch })
        writer.start()
        let results = Locked<[MessageID: Result<AcceptOutcome, StoreError>]>([:])
        let done = CompletionCounter()
        @Sendable func submit(_ incoming: IncomingEnvelope) {
            writer.accept(incoming) { result in
                results.withValue { $0[incoming.id] = result }
                done.signal()
            }
        }
        gated.arm()
        submit(envelope("a", 0))
        try #require(gated.waitUntilHeld())
        for n in 1...10 { submit(envelope("a", n)) }

        // stop() blocks until the writer is done, so it runs on its own thread; what had
        // completed when it returned is recorded there.
        let completedAtStop = Locked<Int?>(nil)
        let stopped = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            writer.stop()
            completedAtStop.withValue { $0 = results.current.count }
            stopped.signal()
        }
        // Probe until the writer refuses new work: the writer is held, so a completion that
        // has already run when accept() returns can only be that refusal. Probes accepted
        // before stop() took effect are queued work like any other.
        var probes: [MessageID] = []
        var refusal: StoreError?
        for n in 100..<200_000 {
            let probe = envelope("probe", n)
            submit(probe)
            if let result = results.current[probe.id] {
                if case .failure(let error) = result { refusal = error }
                break
            }
            probes.append(probe.id)
            sched_yield()
        }
        let error = try #require(refusal, "stop() never took effect")
        #expect(error.kind == .failure)
        #expect(error.message.contains("shutting down"))

        gated.release()
        #expect(stopped.wait(timeout: .now() + .seconds(30)) == .success)
        let queuedBeforeStop = 11 + probes.count
        #expect(completedAtStop.current == queuedBeforeStop + 1)
        let outcomes = results.current
        for n in 0...10 {
            #expect(outcomes[messageID(n)].flatMap { try? $0.get() } == fresh(queueEpoch), "envelope \(n)")
        }
        #expect(probes.allSatisfy { outcomes[$0].flatMap { try? $0.get() } == fresh(queueEpoch) })
        #expect(try gated.queued("a").count == 11)
        #expect(try gated.queued("probe").count == probes.count)

        // After stop(), every kind of work fails at once, with the same clear error.
        let late = Locked<[String]>([])
        writer.accept(envelope("a", 500, salt: 7)) { if case .failure(let e) = $0 { late.withValue { $0.append("accept: \(e.message)") } } }
        writer.acknowledge(mailbox: Mailbox("a"), ids: [messageID(1)]) { if case .failure(let e) = $0 { late.withValue { $0.append("ack: \(e.message)") } } }
        writer.expire { if case .failure(let e) = $0 { late.withValue { $0.append("expire: \(e.message)") } } }
        writer.purge(mailbox: Mailbox("a")) { if case .failure(let e) = $0 { late.withValue { $0.append("purge: \(e.message)") } } }
        #expect(late.current.count == 4)
        #expect(late.current.allSatisfy { $0.contains("shutting down") })
        #expect(try gated.state(of: messageID(500, salt: 7)) == nil)
        #expect(try gated.queuedIDs("a").contains(messageID(1)))
    }

    @Test("stop() on a writer that was never started still answers the work queued on it")
    func stopWithoutStart() throws {
        let store = try file.open()
        let writer = GroupCommitWriter(store: store, clock: { queueEpoch })
        let answers = Locked<[Result<AcceptOutcome, StoreError>]>([])
        writer.accept(envelope("a", 1)) { result in answers.withValue { $0.append(result) } }
        writer.stop()
        #expect(answers.current.count == 1, "a queued accept must be either stored or failed, never dropped")
    }

    @Test("expire and purge through the writer report their counts", arguments: StoreKind.allCases)
    func expireAndPurge(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        _ = try store.accept([envelope("a", 1, ttl: .hour), envelope("a", 2), envelope("b", 3), envelope("b", 4)], now: queueEpoch)
        let writer = GroupCommitWriter(store: store, clock: { queueEpoch + TTLClass.hour.seconds })
        writer.start()
        let counts = Locked<[String: Int]>([:])
        let done = CompletionCounter()
        writer.expire { result in counts.withValue { $0["expire"] = try? result.get() }; done.signal() }
        writer.purge(mailbox: Mailbox("b")) { result in counts.withValue { $0["purge"] = try? result.get() }; done.signal() }
        #expect(done.wait(for: 2))
        writer.stop()
        #expect(counts.current == ["expire": 1, "purge": 2])
        #expect(try store.state(of: messageID(1))?.state == .expiredUndelivered)
        #expect(try store.state(of: messageID(3))?.state == .undeliverable)
        #expect(try store.queuedIDs("a", now: queueEpoch + TTLClass.hour.seconds) == [messageID(2)])
    }
}
