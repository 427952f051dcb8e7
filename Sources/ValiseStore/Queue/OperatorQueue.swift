/// What an operator may do to accepted envelopes, within the delivery contract (`valised
/// queue`): look at them, hold them back, let them go again, and delete one, which the
/// sender then sees as undeliverable (deleted by the operator). Held envelopes keep their
/// expiry: holding never keeps mail past its TTL. Implemented by `SQLiteEnvelopeStore`;
/// the running relay calls it through its control socket, the store's only writer.
public protocol OperatorQueue: Sendable {
    /// Queued envelopes (local mailboxes and forwarding queues), oldest first, at most
    /// `limit`, of one recipient's mailbox when `mailbox` is set. No bodies.
    func queued(mailbox: Mailbox?, limit: Int, now: UInt64) throws(StoreError) -> [QueuedEnvelope]

    /// Each local mailbox's backlog, the largest first.
    func mailboxBacklog(now: UInt64) throws(StoreError) -> [MailboxBacklog]

    /// Holds (or with `held` false releases) these envelopes, in one transaction. Returns
    /// each queued one as it is now; ids not queued are left out.
    func setHeld(_ ids: [MessageID], held: Bool) throws(StoreError) -> [MessageID: QueuedEnvelope]

    /// Deletes these envelopes, in one transaction: each id is remembered as undeliverable
    /// (deleted by the operator) since `now`, for the retention period, so that its
    /// sender's status query says so. Returns each deleted one; ids not queued are left out.
    func deleteByOperator(_ ids: [MessageID], now: UInt64) throws(StoreError) -> [MessageID: QueuedEnvelope]
}

/// One queued envelope as the operator sees it: routing metadata only, never the body.
public struct QueuedEnvelope: Sendable, Equatable {
    public let id: MessageID
    public let mailbox: Mailbox
    /// The relay it waits to be forwarded to; nil in the local mailbox.
    public let destination: String?
    public let precedence: Precedence
    public let arrivedAt: UInt64
    public let expiresAt: UInt64
    public let size: Int
    public let held: Bool

    public init(
        id: MessageID, mailbox: Mailbox, destination: String?, precedence: Precedence, arrivedAt: UInt64, expiresAt: UInt64, size: Int,
        held: Bool
    ) {
        self.id = id
        self.mailbox = mailbox
        self.destination = destination
        self.precedence = precedence
        self.arrivedAt = arrivedAt
        self.expiresAt = expiresAt
        self.size = size
        self.held = held
    }
}

/// One local mailbox's figures (`valised status --mailboxes`).
public struct MailboxBacklog: Sendable, Equatable {
    public let mailbox: Mailbox
    public let count: Int
    public let bytes: Int
    /// Seconds since its oldest envelope arrived.
    public let oldestAge: UInt64
    /// How many of its envelopes an operator holds.
    public let held: Int

    public init(mailbox: Mailbox, count: Int, bytes: Int, oldestAge: UInt64, held: Int) {
        self.mailbox = mailbox
        self.count = count
        self.bytes = bytes
        self.oldestAge = oldestAge
        self.held = held
    }
}
