import ValiseCrypto

/// The mailbox of one recipient device: the member's name in the directory.
public struct Mailbox: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public init(_ name: String) { self.name = name }
    public var description: String { name }
}

/// A message's random 128-bit identifier, chosen by its sender. It is the only handle on
/// a message: whoever knows it may ask the relay whether it is still pending.
public struct MessageID: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 16
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// The 16 bytes in one call: an array's own hashing feeds the hasher byte by byte, and
    /// the relay hashes ids for every envelope in flight.
    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public var description: String { Hex.encode(bytes) }
}

/// Message precedence, the classic order of diplomatic and military traffic; higher is
/// delivered first. Visible to the relay by necessity.
public enum Precedence: Int, Sendable, CaseIterable, Comparable {
    case routine = 0
    case priority = 1
    case immediate = 2
    case flash = 3

    public var name: String {
        switch self {
        case .routine: "ROUTINE"
        case .priority: "PRIORITY"
        case .immediate: "IMMEDIATE"
        case .flash: "FLASH"
        }
    }

    public static func < (lhs: Precedence, rhs: Precedence) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// How long the relay keeps a message for its recipient, counted on the relay's own clock.
public enum TTLClass: Int, Sendable, CaseIterable, Comparable {
    case hour = 0
    case day = 1
    case week = 2
    case month = 3

    public var seconds: UInt64 {
        switch self {
        case .hour: 3600
        case .day: 86_400
        case .week: 7 * 86_400
        case .month: 30 * 86_400
        }
    }

    public var name: String {
        switch self {
        case .hour: "1h"
        case .day: "1d"
        case .week: "7d"
        case .month: "30d"
        }
    }

    public static func < (lhs: TTLClass, rhs: TTLClass) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// An envelope a sender hands the relay.
public struct IncomingEnvelope: Sendable {
    public let mailbox: Mailbox
    public let id: MessageID
    public let precedence: Precedence
    /// The class the relay applies (the sender's, capped by the relay's maximum).
    public let ttl: TTLClass
    /// The class the sender asked for, as the relay protocol numbers it (0 DEFAULT, 1 hour …
    /// 4 month): kept only to deliver it with the envelope, whose sealed contents bind it.
    public let requestedTTL: UInt8
    /// Where it waits: nil for this relay's own mailbox `mailbox`; a relay's name for the
    /// forwarding queue to that relay (the recipient is homed there).
    public let destination: String?
    /// The lifetime it carries from another relay (nil: it arrives now, with the whole of
    /// `ttl` ahead of it).
    public let lifetime: CarriedLifetime?
    /// Relays that held it, counting this one: 1 for a device's send.
    public let hops: UInt8
    /// The sealed bytes: opaque to the relay.
    public let body: [UInt8]

    /// Without `requestedTTL`, the sender asked for the class applied. The defaults are a
    /// device's send to this relay's own mailbox.
    public init(
        mailbox: Mailbox, id: MessageID, precedence: Precedence, ttl: TTLClass, requestedTTL: UInt8? = nil,
        destination: String? = nil, lifetime: CarriedLifetime? = nil, hops: UInt8 = 1, body: [UInt8]
    ) {
        self.mailbox = mailbox
        self.id = id
        self.precedence = precedence
        self.ttl = ttl
        self.requestedTTL = requestedTTL ?? UInt8(ttl.rawValue + 1)
        self.destination = destination
        self.lifetime = lifetime
        self.hops = hops
        self.body = body
    }

    /// When it arrived, on this relay's clock, if accepted at `now`: now less the carried
    /// age (never before 0).
    public func arrival(now: UInt64) -> UInt64 {
        guard let lifetime else { return now }
        return now > lifetime.age ? now - lifetime.age : 0
    }

    /// When it expires, if accepted at `now`: its class's lifetime from now, or the carried
    /// remaining lifetime when that is shorter (a relay never extends what it was handed).
    public func expiry(now: UInt64) -> UInt64 {
        now + (lifetime.map { min($0.remaining, ttl.seconds) } ?? ttl.seconds)
    }
}

/// An envelope's lifetime as a relay link carries it: seconds since the origin accepted it
/// and seconds it has left, both recomputed at each transmission, never a clock reading
/// (relay clocks may disagree).
public struct CarriedLifetime: Sendable, Equatable {
    public let age: UInt64
    public let remaining: UInt64

    public init(age: UInt64, remaining: UInt64) {
        self.age = age
        self.remaining = remaining
    }
}

/// An envelope waiting for its recipient.
public struct StoredEnvelope: Sendable, Equatable {
    /// Arrival order within the store.
    public let sequence: Int64
    public let mailbox: Mailbox
    public let id: MessageID
    public let precedence: Precedence
    public let arrivedAt: UInt64
    public let expiresAt: UInt64
    public let body: [UInt8]
    /// The TTL class the sender asked for, as `IncomingEnvelope.requestedTTL` (expiry runs
    /// on `expiresAt`, the class applied).
    public let requestedTTL: UInt8

    public init(
        sequence: Int64, mailbox: Mailbox, id: MessageID, precedence: Precedence, arrivedAt: UInt64, expiresAt: UInt64, body: [UInt8],
        requestedTTL: UInt8 = 0
    ) {
        self.sequence = sequence
        self.mailbox = mailbox
        self.id = id
        self.precedence = precedence
        self.arrivedAt = arrivedAt
        self.expiresAt = expiresAt
        self.body = body
        self.requestedTTL = requestedTTL
    }

    /// An envelope just accepted, as the store now holds it (its sequence is not known
    /// outside the store: 0), to hand to a connection already delivering its mailbox.
    /// The acceptance time is what the expiry was counted from (its class's seconds, or the
    /// shorter carried remaining lifetime), less any carried age.
    public init(accepted envelope: IncomingEnvelope, expiresAt: UInt64) {
        let lifetime = envelope.lifetime.map { min($0.remaining, envelope.ttl.seconds) } ?? envelope.ttl.seconds
        let acceptedAt = expiresAt > lifetime ? expiresAt - lifetime : 0
        self.init(
            sequence: 0, mailbox: envelope.mailbox, id: envelope.id, precedence: envelope.precedence,
            arrivedAt: envelope.arrival(now: acceptedAt), expiresAt: expiresAt, body: envelope.body, requestedTTL: envelope.requestedTTL)
    }
}

/// What the store did with one envelope of a batch.
public enum AcceptOutcome: Sendable, Equatable {
    /// Stored durably (or stored before: a re-send of a known id makes no second copy).
    case accepted(expiresAt: UInt64, duplicate: Bool)
    case refused(StoreRefusal)
}

public enum StoreRefusal: Sendable, Equatable {
    /// The mailbox holds its maximum number of messages or bytes; nothing was evicted.
    case mailboxFull
    /// The id was accepted before for another mailbox.
    case idInUse
    /// The id was accepted before and is no longer pending (delivered, expired, undeliverable).
    case alreadyDone(MessageState)
    /// The disk (or the store's configured size) is full.
    case storageFull
    /// The forwarding queue to the envelope's destination relay holds its maximum number of
    /// messages or bytes (that relay is likely unreachable); temporary, nothing was evicted.
    case destinationFull
}

/// What the relay remembers of a message id, for the retention period.
public enum MessageState: Int, Sendable {
    case pending = 1
    case delivered = 2
    case expiredUndelivered = 3
    /// Accepted, then dropped before delivery: it never will be (`UndeliverableReason`
    /// says why). Queues written before reasons were stored held only revocations here.
    case undeliverable = 4
    /// Handed to another relay, which committed it durably (custody transfer): that relay
    /// now answers for it (`RememberedMessage.forwardedTo` names it).
    case forwarded = 5
}

/// Why an accepted message can never be delivered. The numbers are the relay protocol's
/// (`MessageStatus.UndeliverableReason`) and those both stores keep: the relay's queue and
/// the client's local store.
public enum UndeliverableReason: Int, Sendable, CaseIterable {
    /// The directory revoked the recipient before it took the message.
    case recipientRevoked = 1
    /// The recipient's relay knows no such member (a relay link's permanent refusal).
    case unknownRecipient = 2
    /// The relay's operator deleted it from the queue.
    case deletedByOperator = 3
    /// The recipient's relay refused it for good over a relay link, for another reason
    /// (an envelope it will not take, or too many relays on the way).
    case refusedByRelay = 4

    /// As `valise sent` shows it: "undeliverable (recipient revoked)".
    public var name: String {
        switch self {
        case .recipientRevoked: "recipient revoked"
        case .unknownRecipient: "unknown recipient"
        case .deletedByOperator: "deleted by the operator"
        case .refusedByRelay: "refused by the recipient's relay"
        }
    }

    /// For JSON: "recipient-revoked".
    public var code: String {
        switch self {
        case .recipientRevoked: "recipient-revoked"
        case .unknownRecipient: "unknown-recipient"
        case .deletedByOperator: "deleted-by-operator"
        case .refusedByRelay: "refused-by-relay"
        }
    }
}

/// What the relay remembers of one message id, and since when.
public struct RememberedMessage: Sendable, Equatable {
    public let state: MessageState
    public let since: UInt64
    /// Set for `.undeliverable` only.
    public let reason: UndeliverableReason?
    /// Set for `.forwarded` only: the relay that took custody.
    public let forwardedTo: String?

    public init(state: MessageState, since: UInt64, reason: UndeliverableReason? = nil, forwardedTo: String? = nil) {
        self.state = state
        self.since = since
        self.reason = reason
        self.forwardedTo = forwardedTo
    }
}

/// Queue figures for `valised status` and the periodic log line: the local mailboxes only
/// (`ForwardingBacklog` gives the forwarding queues), except `remembered`, which counts
/// every id.
public struct QueueStatistics: Sendable, Equatable {
    public var countByPrecedence: [Precedence: Int] = [:]
    public var bytes: Int = 0
    /// Seconds since the oldest queued envelope arrived (0 when empty).
    public var oldestAge: UInt64 = 0
    public var mailboxes: Int = 0
    /// Remembered ids in each state.
    public var remembered: [MessageState: Int] = [:]

    public var count: Int { countByPrecedence.values.reduce(0, +) }

    public init() {}
}

/// The store's bounds.
public struct QueueLimits: Sendable, Equatable {
    /// Messages and bytes one mailbox may hold; beyond them senders are refused.
    public var maximumMessagesPerMailbox = 10_000
    public var maximumBytesPerMailbox = 256 * 1024 * 1024
    /// Messages and bytes the forwarding queue to one relay may hold: bounds what waits for
    /// a relay that is down (a recipient's envelopes in it count in their mailbox's bounds too).
    public var maximumMessagesPerDestination = 100_000
    public var maximumBytesPerDestination = 1 << 30
    /// How long an accepted id is remembered (for dedup and status), after its message
    /// leaves the queue: the longest TTL and a day.
    public var retentionSeconds: UInt64 = 31 * 86_400

    public init() {}
}
