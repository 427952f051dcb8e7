/// Where the relay keeps envelopes until their recipients acknowledge them. The relay
/// depends only on this protocol; SQLite (`SQLiteEnvelopeStore`) is the embedded default,
/// and a PostgreSQL store for several relay nodes can implement it later.
///
/// Every method is synchronous and may block on disk: call them off event loops (the
/// relay funnels writes through one `GroupCommitWriter` thread and reads through a thread
/// pool). Every write is one transaction, durable when the method returns.
public protocol EnvelopeStore: Sendable {
    /// Stores a batch of envelopes in one transaction (group commit): each in its mailbox,
    /// or, with a `destination`, in the forwarding queue to that relay. Expiry is set from
    /// `now` and each envelope's TTL class (or its carried lifetime, if shorter). Ids are
    /// remembered across both queues: a known id for the same mailbox is accepted again
    /// without a second copy and keeps the first copy's expiry; for another mailbox it is
    /// refused as in use. A recipient's envelopes in both queues count against the mailbox's
    /// bounds, and a forwarding queue's against the destination's bounds.
    func accept(_ envelopes: [IncomingEnvelope], now: UInt64) throws(StoreError) -> [AcceptOutcome]

    /// The mailbox's next envelopes to deliver: highest precedence first, then oldest,
    /// never expired ones, leaving out `excluding` (those already in flight).
    func nextForDelivery(mailbox: Mailbox, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [StoredEnvelope]

    /// Deletes acknowledged envelopes and remembers them as delivered, all requests in one
    /// transaction. Unknown or repeated acks are ignored. Returns, per request, how many
    /// envelopes it deleted (an id acknowledged twice counts for the first request only).
    func acknowledge(_ requests: [AcknowledgeRequest], now: UInt64) throws(StoreError) -> [Int]

    /// Accepts, acknowledgements, forwarding completions and reroutes together, in one
    /// transaction where the store can (one durable commit for all), in that order; each
    /// part's result on its own. If the whole fails, each part goes again on its own, so
    /// that what frees room is not held back by new envelopes.
    func commit(_ batch: CommitBatch, now: UInt64) -> CommitResult

    /// Removes expired envelopes from the mailboxes and the forwarding queues (remembered
    /// as expired undelivered, since their expiry) and forgets ids whose retention has
    /// passed. Returns how many envelopes expired, local and per destination.
    func expireCounts(now: UInt64) throws(StoreError) -> ExpiryCounts

    /// Removes every envelope of a revoked recipient, in its mailbox and in the forwarding
    /// queues (and its prekeys, where the store keeps them); each id is remembered as
    /// undeliverable (recipient revoked) since `now`, for the retention period, as an
    /// expired one is. Returns how many envelopes.
    func purge(mailbox: Mailbox, now: UInt64) throws(StoreError) -> Int

    /// What is remembered of these ids, since when, why for an undeliverable one and to
    /// which relay for a forwarded one, at `now`: a pending envelope whose expiry has passed
    /// but which the sweep has not removed yet is already expired undelivered (since its
    /// expiry), as it can no longer be delivered.
    func states(of ids: [MessageID], now: UInt64) throws(StoreError) -> [MessageID: RememberedMessage]

    /// The local mailboxes' figures (the forwarding queues are in `forwardingBacklog`); the
    /// remembered ids of every state.
    func statistics(now: UInt64) throws(StoreError) -> QueueStatistics

    /// The mailboxes that hold at least one envelope, local or waiting to be forwarded (or,
    /// in a store that also keeps prekeys, any prekey), so that the relay can purge those
    /// of revoked members.
    func occupiedMailboxes() throws(StoreError) -> [Mailbox]

    // MARK: Forwarding queues (envelopes for recipients homed at other relays)

    /// The next envelopes to push to `destination`: highest precedence first (FLASH), then
    /// oldest, never expired ones, leaving out `excluding` (those already in flight).
    func nextForForwarding(destination: String, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [OutgoingEnvelope]

    /// Records destination relays' final answers, all in one transaction: each envelope is
    /// deleted and its id remembered as forwarded (naming the relay that answered) or
    /// undeliverable (with the reason), since `now`. Matched by id in any forwarding queue
    /// (custody went to whoever committed it, even if the recipient was rerouted to another
    /// relay since); ids in no forwarding queue (a repeated answer, or an envelope moved
    /// back to the local mailbox meanwhile) are ignored. Returns how many envelopes it deleted.
    func completeForwarding(_ completions: [ForwardCompletion], now: UInt64) throws(StoreError) -> Int

    /// Moves every envelope of `mailbox` to the forwarding queue of `destination`, or with
    /// nil to the local mailbox, in one transaction: when the directory moves a member,
    /// mail queued at the old home follows them. Arrival, expiry, precedence and requested
    /// TTL are kept; moving from the local mailbox to a forwarding queue adds 1 to the hop
    /// count (this relay held it as the home and now passes it on). Quotas are not checked:
    /// the envelopes were accepted already. Returns how many envelopes moved.
    func reroute(mailbox: Mailbox, to destination: String?, now: UInt64) throws(StoreError) -> Int

    /// What waits in each non-empty forwarding queue, by destination relay.
    func forwardingBacklog(now: UInt64) throws(StoreError) -> [String: ForwardingBacklog]

    /// The relays with a non-empty forwarding queue, by name: the relay keeps links to them.
    func destinations() throws(StoreError) -> [String]
}

/// One recipient's acknowledgement: these ids of this mailbox were received.
public struct AcknowledgeRequest: Sendable, Equatable {
    public let mailbox: Mailbox
    public let ids: [MessageID]

    public init(mailbox: Mailbox, ids: [MessageID]) {
        self.mailbox = mailbox
        self.ids = ids
    }
}

extension EnvelopeStore {
    /// One transaction per part (per reroute), one after the other: for stores that cannot
    /// do better.
    public func commit(_ batch: CommitBatch, now: UInt64) -> CommitResult {
        separately(batch, now: now)
    }

    /// Each part of `batch` in transactions of its own; empty parts cost nothing.
    public func separately(_ batch: CommitBatch, now: UInt64) -> CommitResult {
        CommitResult(
            accepted: Result { () throws(StoreError) in batch.envelopes.isEmpty ? [] : try accept(batch.envelopes, now: now) },
            acknowledged: Result { () throws(StoreError) in
                batch.acknowledgements.isEmpty ? [] : try acknowledge(batch.acknowledgements, now: now)
            },
            completed: Result { () throws(StoreError) in
                try batch.completions.map { completions throws(StoreError) in try completeForwarding(completions, now: now) }
            },
            rerouted: Result { () throws(StoreError) in
                try batch.reroutes.map { request throws(StoreError) in try reroute(mailbox: request.mailbox, to: request.destination, now: now) }
            })
    }

    /// `accept` and `acknowledge` together, as `commit(_:now:)` does them.
    public func commit(
        accepting envelopes: [IncomingEnvelope], acknowledging requests: [AcknowledgeRequest], now: UInt64
    ) -> (accepted: Result<[AcceptOutcome], StoreError>, acknowledged: Result<[Int], StoreError>) {
        let result = commit(CommitBatch(envelopes: envelopes, acknowledgements: requests), now: now)
        return (result.accepted, result.acknowledged)
    }

    /// Removes expired envelopes, as `expireCounts`; returns how many in all.
    public func expire(now: UInt64) throws(StoreError) -> Int {
        try expireCounts(now: now).total
    }

    /// What is recorded of these ids, as of the last sweep.
    public func states(of ids: [MessageID]) throws(StoreError) -> [MessageID: RememberedMessage] {
        try states(of: ids, now: 0)
    }

    /// One mailbox's acknowledgement in a transaction of its own. Returns how many
    /// envelopes were deleted.
    public func acknowledge(mailbox: Mailbox, ids: [MessageID], now: UInt64) throws(StoreError) -> Int {
        try acknowledge([AcknowledgeRequest(mailbox: mailbox, ids: ids)], now: now).first ?? 0
    }
}

/// A storage failure. `storageFull` means the disk or the configured size is full: the
/// relay refuses new envelopes and keeps serving the ones it has.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        case storageFull, corrupt, failure
        /// A bound on what one client may keep was reached; nothing changed.
        case limitReached
        /// The store cannot be reached (a database server down or unreachable, no primary
        /// found); nothing is known to have changed. The relay answers UNAVAILABLE.
        case unavailable
    }
    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
