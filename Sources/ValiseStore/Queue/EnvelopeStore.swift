/// Where the relay keeps envelopes until their recipients acknowledge them. The relay
/// depends only on this protocol; SQLite (`SQLiteEnvelopeStore`) is the embedded default,
/// and a PostgreSQL store for several relay nodes can implement it later.
///
/// Every method is synchronous and may block on disk: call them off event loops (the
/// relay funnels writes through one `GroupCommitWriter` thread and reads through a thread
/// pool). Every write is one transaction, durable when the method returns.
public protocol EnvelopeStore: Sendable {
    /// Stores a batch of envelopes in one transaction (group commit). Expiry is set from
    /// `now` and each envelope's TTL class. A known id for the same mailbox is accepted
    /// again without a second copy.
    func accept(_ envelopes: [IncomingEnvelope], now: UInt64) throws(StoreError) -> [AcceptOutcome]

    /// The mailbox's next envelopes to deliver: highest precedence first, then oldest,
    /// never expired ones, leaving out `excluding` (those already in flight).
    func nextForDelivery(mailbox: Mailbox, excluding: Set<MessageID>, limit: Int, now: UInt64) throws(StoreError) -> [StoredEnvelope]

    /// Deletes acknowledged envelopes and remembers them as delivered, all requests in one
    /// transaction. Unknown or repeated acks are ignored. Returns, per request, how many
    /// envelopes it deleted (an id acknowledged twice counts for the first request only).
    func acknowledge(_ requests: [AcknowledgeRequest], now: UInt64) throws(StoreError) -> [Int]

    /// `accept` and `acknowledge` together, in one transaction where the store can (one
    /// durable commit for both); each part's result on its own.
    func commit(
        accepting envelopes: [IncomingEnvelope], acknowledging requests: [AcknowledgeRequest], now: UInt64
    ) -> (accepted: Result<[AcceptOutcome], StoreError>, acknowledged: Result<[Int], StoreError>)

    /// Removes expired envelopes (remembered as expired undelivered) and forgets ids whose
    /// retention has passed. Returns how many envelopes expired.
    func expire(now: UInt64) throws(StoreError) -> Int

    /// Removes every envelope of a revoked recipient (and its prekeys, where the store
    /// keeps them); each id is remembered as undeliverable (recipient revoked) since `now`,
    /// for the retention period, as an expired one is. Returns how many envelopes.
    func purge(mailbox: Mailbox, now: UInt64) throws(StoreError) -> Int

    /// What is remembered of these ids, since when, and why for an undeliverable one, at
    /// `now`: a pending envelope whose expiry has passed but which the sweep has not removed
    /// yet is already expired undelivered (since its expiry), as it can no longer be delivered.
    func states(of ids: [MessageID], now: UInt64) throws(StoreError) -> [MessageID: RememberedMessage]

    func statistics(now: UInt64) throws(StoreError) -> QueueStatistics

    /// The mailboxes that hold at least one envelope (or, in a store that also keeps
    /// prekeys, any prekey), so that the relay can purge those of revoked members.
    func occupiedMailboxes() throws(StoreError) -> [Mailbox]
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
    /// Two transactions, one after the other: for stores that cannot do better.
    public func commit(
        accepting envelopes: [IncomingEnvelope], acknowledging requests: [AcknowledgeRequest], now: UInt64
    ) -> (accepted: Result<[AcceptOutcome], StoreError>, acknowledged: Result<[Int], StoreError>) {
        (Result { () throws(StoreError) in try accept(envelopes, now: now) },
         Result { () throws(StoreError) in try acknowledge(requests, now: now) })
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
    }
    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
