@testable import ValiseStore

/// What the mailboxes and forwarding queues should hold, written from the store's contract:
/// one list of envelopes (each queue keeps its envelopes in the list's order; a moved
/// envelope goes to the end of its new queue, except between forwarding queues, where it
/// keeps its place), and what is remembered of every id. The mailboxes' own model test uses
/// it without destinations.
struct ForwardingModel {
    struct Entry {
        let id: MessageID
        let mailbox: String
        var destination: String?
        let precedence: Precedence
        let arrivedAt: UInt64
        let expiresAt: UInt64
        var hops: UInt8
        let body: [UInt8]
    }

    let limits: QueueLimits
    var envelopes: [Entry] = []
    var memory: [MessageID: (mailbox: String, forgetAt: UInt64, expiresAt: UInt64, remembered: RememberedMessage)] = [:]

    init(limits: QueueLimits) { self.limits = limits }

    private mutating func remember(_ id: MessageID, _ state: MessageState, since: UInt64, reason: UndeliverableReason? = nil, relay: String? = nil) {
        memory[id]?.remembered = RememberedMessage(state: state, since: since, reason: reason, forwardedTo: relay)
    }

    mutating func accept(_ envelope: IncomingEnvelope, now: UInt64) -> AcceptOutcome {
        if let known = memory[envelope.id] {
            return known.mailbox == envelope.mailbox.name ? .accepted(expiresAt: known.expiresAt, duplicate: true) : .refused(.idInUse)
        }
        let mine = envelopes.filter { $0.mailbox == envelope.mailbox.name }
        guard mine.count + 1 <= limits.maximumMessagesPerMailbox,
              mine.reduce(0, { $0 + $1.body.count }) + envelope.body.count <= limits.maximumBytesPerMailbox
        else { return .refused(.mailboxFull) }
        if let destination = envelope.destination {
            let queue = envelopes.filter { $0.destination == destination }
            guard queue.count + 1 <= limits.maximumMessagesPerDestination,
                  queue.reduce(0, { $0 + $1.body.count }) + envelope.body.count <= limits.maximumBytesPerDestination
            else { return .refused(.destinationFull) }
        }
        let arrivedAt = envelope.lifetime.map { now > $0.age ? now - $0.age : 0 } ?? now
        let expiresAt = now + min(envelope.lifetime?.remaining ?? .max, envelope.ttl.seconds)
        envelopes.append(Entry(
            id: envelope.id, mailbox: envelope.mailbox.name, destination: envelope.destination, precedence: envelope.precedence,
            arrivedAt: arrivedAt, expiresAt: expiresAt, hops: envelope.hops, body: envelope.body))
        memory[envelope.id] = (envelope.mailbox.name, expiresAt + limits.retentionSeconds, expiresAt,
                               RememberedMessage(state: .pending, since: arrivedAt))
        return .accepted(expiresAt: expiresAt, duplicate: false)
    }

    mutating func acknowledge(mailbox: String, ids: [MessageID], now: UInt64) -> Int {
        var deleted = 0
        for id in ids {
            guard let index = envelopes.firstIndex(where: { $0.id == id && $0.mailbox == mailbox && $0.destination == nil }) else {
                if let known = memory[id], known.mailbox == mailbox, known.remembered.state == .expiredUndelivered {
                    remember(id, .delivered, since: now)
                }
                continue
            }
            envelopes.remove(at: index)
            remember(id, .delivered, since: now)
            deleted += 1
        }
        return deleted
    }

    mutating func complete(_ completions: [ForwardCompletion], now: UInt64) -> Int {
        var deleted = 0
        for completion in completions {
            guard let index = envelopes.firstIndex(where: { $0.id == completion.id && $0.destination != nil }) else { continue }
            envelopes.remove(at: index)
            switch completion.outcome {
            case .transferred: remember(completion.id, .forwarded, since: now, relay: completion.destination)
            case .undeliverable(let reason): remember(completion.id, .undeliverable, since: now, reason: reason)
            }
            deleted += 1
        }
        return deleted
    }

    mutating func reroute(mailbox: String, to destination: String?, now: UInt64) -> Int {
        var moved = 0
        if let destination {
            for index in envelopes.indices
            where envelopes[index].mailbox == mailbox && envelopes[index].destination != nil && envelopes[index].destination != destination {
                envelopes[index].destination = destination
                moved += 1
            }
        }
        let leaving = envelopes.filter { $0.mailbox == mailbox && ($0.destination == nil) != (destination == nil) }
        envelopes.removeAll { $0.mailbox == mailbox && ($0.destination == nil) != (destination == nil) }
        for var entry in leaving {
            if entry.destination == nil { entry.hops = entry.hops == 255 ? 255 : entry.hops + 1 }
            entry.destination = destination
            envelopes.append(entry)
        }
        return moved + leaving.count
    }

    mutating func expire(now: UInt64) -> ExpiryCounts {
        var counts = ExpiryCounts()
        for entry in envelopes where entry.expiresAt <= now {
            if let destination = entry.destination { counts.forwarding[destination, default: 0] += 1 } else { counts.local += 1 }
            remember(entry.id, .expiredUndelivered, since: entry.expiresAt)
        }
        envelopes.removeAll { $0.expiresAt <= now }
        memory = memory.filter { $0.value.forgetAt > now }
        return counts
    }

    mutating func purge(mailbox: String, now: UInt64) -> Int {
        let purged = envelopes.filter { $0.mailbox == mailbox }
        envelopes.removeAll { $0.mailbox == mailbox }
        for entry in purged { remember(entry.id, .undeliverable, since: now, reason: .recipientRevoked) }
        return purged.count
    }

    /// In queue order: highest precedence first, then the list's order.
    private func ordered(_ entries: [Entry], now: UInt64) -> [Entry] {
        let live = entries.filter { $0.expiresAt > now }
        return Precedence.allCases.reversed().flatMap { precedence in live.filter { $0.precedence == precedence } }
    }

    func next(mailbox: String, now: UInt64) -> [Entry] {
        ordered(envelopes.filter { $0.mailbox == mailbox && $0.destination == nil }, now: now)
    }

    func waiting(for destination: String, now: UInt64) -> [Entry] {
        ordered(envelopes.filter { $0.destination == destination }, now: now)
    }

    func backlog(now: UInt64) -> [String: ForwardingBacklog] {
        var backlog: [String: ForwardingBacklog] = [:]
        for entry in envelopes {
            guard let destination = entry.destination else { continue }
            var figures = backlog[destination] ?? ForwardingBacklog(oldestAge: 0)
            let age = now > entry.arrivedAt ? now - entry.arrivedAt : 0
            figures.oldestAge = figures.count == 0 ? age : max(figures.oldestAge, age)
            figures.count += 1
            figures.bytes += entry.body.count
            backlog[destination] = figures
        }
        return backlog
    }

    func statistics(now: UInt64) -> QueueStatistics {
        var statistics = QueueStatistics()
        let local = envelopes.filter { $0.destination == nil }
        for entry in local {
            statistics.countByPrecedence[entry.precedence, default: 0] += 1
            statistics.bytes += entry.body.count
        }
        if let oldest = local.map(\.arrivedAt).min() { statistics.oldestAge = now > oldest ? now - oldest : 0 }
        statistics.mailboxes = Set(local.map(\.mailbox)).count
        for known in memory.values { statistics.remembered[known.remembered.state, default: 0] += 1 }
        return statistics
    }
}
