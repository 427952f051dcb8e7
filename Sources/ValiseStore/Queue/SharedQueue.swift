/// What a store offers when several relay nodes share it (PostgreSQL): envelopes leased to
/// the connection that delivers or forwards them, so that two nodes never send the same
/// envelope at once; notifications of what other nodes committed; and the directory log the
/// nodes share. The embedded SQLite store has one node and does not conform: the relay's
/// in-memory bookkeeping is enough there.
///
/// Methods are synchronous and may block, like `EnvelopeStore`'s: call them off event loops.
public protocol SharedQueue: Sendable {
    /// This node's identity in leases: random for each process, so that a restarted node
    /// never mistakes an old incarnation's leases for its own.
    var node: String { get }

    /// As `nextForDelivery`, and leases what it returns to `holder` until `now` plus
    /// `SharedQueueLease.seconds`. Envelopes leased to another holder whose lease has not
    /// expired are never returned, and neither is anything after the first of them in
    /// delivery order, so that no envelope overtakes one of higher precedence that another
    /// node is delivering.
    func leaseForDelivery(
        mailbox: Mailbox, holder: LeaseHolder, excluding: Set<MessageID>, limit: Int, now: UInt64
    ) throws(StoreError) -> [StoredEnvelope]

    /// As `nextForForwarding`, leased to `holder` (a relay link of this node) in the same way.
    func leaseForForwarding(
        destination: String, holder: LeaseHolder, excluding: Set<MessageID>, limit: Int, now: UInt64
    ) throws(StoreError) -> [OutgoingEnvelope]

    /// Gives back every lease of `holder` (its connection closed): another connection may
    /// deliver those envelopes at once.
    func releaseLeases(of holder: LeaseHolder) throws(StoreError)

    /// Extends the leases of this node's `connections` (those still open) to `now` plus
    /// `SharedQueueLease.seconds`. The relay calls it every `SharedQueueLease.renewSeconds`; a
    /// node that stops renewing (killed, cut off from the database) loses its leases when
    /// they expire, and so does a closed connection whose release failed (the database was
    /// down when it closed): renewing every lease of the node would keep those forever and
    /// block its mailbox.
    func renewLeases(of connections: [UInt64], now: UInt64) throws(StoreError)

    /// What every node commits (this one's included), as the database announces it, from a
    /// connection of its own. After any reconnect of that connection the stream yields
    /// `.everything`, since announcements made meanwhile are lost. Finishes when the store
    /// closes.
    func changes() -> AsyncStream<QueueChange>
}

/// The directory log that the nodes of one relay share, so that an entry published to one
/// node (a revocation above all) reaches the others within a second: each node verifies
/// what it reads here before applying it, as it verifies entries pushed by another relay.
public protocol SharedDirectoryLog: Sendable {
    /// Directory log entries (their canonical bytes) from position `start` (0 is genesis),
    /// at most `limit`, as the nodes have stored them.
    func directoryEntries(from start: Int, limit: Int) throws(StoreError) -> [[UInt8]]

    /// Stores directory log entries from position `start`, in one transaction; positions
    /// already stored are kept as they are (the log only grows, and every node verified
    /// what it stores). Announces `.directory` to every node when something was added.
    /// Returns how many entries were new.
    func appendDirectoryEntries(_ entries: [[UInt8]], from start: Int) throws(StoreError) -> Int
}

/// A connection (or relay link) of one node that holds envelopes in delivery.
public struct LeaseHolder: Sendable, Hashable, CustomStringConvertible {
    public let node: String
    public let connection: UInt64

    public init(node: String, connection: UInt64) {
        self.node = node
        self.connection = connection
    }

    public var description: String { "\(node)/\(connection)" }
}

/// How long a lease lasts and how often the relay renews it.
public enum SharedQueueLease {
    /// A killed node's envelopes become deliverable elsewhere after at most this long.
    public static let seconds: UInt64 = 30
    public static let renewSeconds: UInt64 = 10
    /// The slowest a node looks in the store on its own, in case an announcement was lost.
    public static let pollSeconds: UInt64 = 5
}

/// One announcement from the shared store.
public enum QueueChange: Sendable, Equatable {
    /// Envelopes became deliverable in these mailboxes.
    case mailboxes([Mailbox])
    /// Envelopes joined the forwarding queues to these relays.
    case destinations([String])
    /// The shared directory log grew.
    case directory
    /// Anything may have changed (announcements lost, or too many to name): look again. Also
    /// follows `.unavailable` once the database answers again.
    case everything
    /// The database cannot be reached: the relay refuses requests with UNAVAILABLE and closes
    /// client connections, so that clients move to another node, until `.everything`.
    case unavailable
}
