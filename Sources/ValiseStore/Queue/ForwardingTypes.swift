/// An envelope in a forwarding queue, as the relay pushes it over a link to its
/// destination relay (where its recipient is homed).
public struct OutgoingEnvelope: Sendable, Equatable {
    /// Arrival order within the forwarding queues.
    public let sequence: Int64
    /// The relay it waits for.
    public let destination: String
    /// Its recipient, homed at `destination`.
    public let mailbox: Mailbox
    public let id: MessageID
    public let precedence: Precedence
    /// As `IncomingEnvelope.requestedTTL`: carried on, since the sealed contents bind it.
    public let requestedTTL: UInt8
    /// On this relay's clock: the link sends the age (now less this) and the remaining
    /// lifetime (this expiry less now), never the times themselves.
    public let arrivedAt: UInt64
    public let expiresAt: UInt64
    /// Relays that held it, counting this one.
    public let hops: UInt8
    public let body: [UInt8]

    public init(
        sequence: Int64, destination: String, mailbox: Mailbox, id: MessageID, precedence: Precedence, requestedTTL: UInt8,
        arrivedAt: UInt64, expiresAt: UInt64, hops: UInt8, body: [UInt8]
    ) {
        self.sequence = sequence
        self.destination = destination
        self.mailbox = mailbox
        self.id = id
        self.precedence = precedence
        self.requestedTTL = requestedTTL
        self.arrivedAt = arrivedAt
        self.expiresAt = expiresAt
        self.hops = hops
        self.body = body
    }
}

/// A destination relay's final answer about one forwarded envelope. Temporary refusals
/// (full mailbox, full storage, rate limits, not home any more) are not completions: the
/// envelope stays queued.
public struct ForwardCompletion: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// The destination committed it durably: this relay deletes its copy and remembers
        /// the id as forwarded to that relay.
        case transferred
        /// The destination refused it for good: this relay deletes it and remembers the id
        /// as undeliverable, for this reason.
        case undeliverable(UndeliverableReason)
    }

    public let id: MessageID
    /// The relay that answered.
    public let destination: String
    public let outcome: Outcome

    public init(id: MessageID, destination: String, outcome: Outcome) {
        self.id = id
        self.destination = destination
        self.outcome = outcome
    }
}

/// One recipient's envelopes moved to another queue of this relay (`EnvelopeStore.reroute`).
public struct RerouteRequest: Sendable, Equatable {
    public let mailbox: Mailbox
    /// The relay whose forwarding queue takes them; nil for this relay's own mailbox.
    public let destination: String?

    public init(mailbox: Mailbox, destination: String?) {
        self.mailbox = mailbox
        self.destination = destination
    }
}

/// What waits for one destination relay, for `valised status` and the log.
public struct ForwardingBacklog: Sendable, Equatable {
    public var count = 0
    public var bytes = 0
    /// Seconds since the oldest queued envelope arrived (0 when empty).
    public var oldestAge: UInt64 = 0

    public init(count: Int = 0, bytes: Int = 0, oldestAge: UInt64 = 0) {
        self.count = count
        self.bytes = bytes
        self.oldestAge = oldestAge
    }
}

/// How many envelopes one expiry sweep removed, from the local mailboxes and from each
/// forwarding queue (the relay logs and counts those apart).
public struct ExpiryCounts: Sendable, Equatable {
    public var local = 0
    /// Per destination relay.
    public var forwarding: [String: Int] = [:]

    public var total: Int { local + forwarding.values.reduce(0, +) }

    public init(local: Int = 0, forwarding: [String: Int] = [:]) {
        self.local = local
        self.forwarding = forwarding
    }
}

/// Everything one group commit writes, in one transaction where the store can.
public struct CommitBatch: Sendable {
    public var envelopes: [IncomingEnvelope] = []
    public var acknowledgements: [AcknowledgeRequest] = []
    /// One list per caller: each gets its own count back.
    public var completions: [[ForwardCompletion]] = []
    public var reroutes: [RerouteRequest] = []

    public init(
        envelopes: [IncomingEnvelope] = [], acknowledgements: [AcknowledgeRequest] = [], completions: [[ForwardCompletion]] = [],
        reroutes: [RerouteRequest] = []
    ) {
        self.envelopes = envelopes
        self.acknowledgements = acknowledgements
        self.completions = completions
        self.reroutes = reroutes
    }
}

/// Each part of a `CommitBatch`'s result on its own: the outcome per envelope, and per
/// acknowledgement, completion list and reroute how many envelopes it moved or deleted.
public struct CommitResult: Sendable {
    public var accepted: Result<[AcceptOutcome], StoreError>
    public var acknowledged: Result<[Int], StoreError>
    public var completed: Result<[Int], StoreError>
    public var rerouted: Result<[Int], StoreError>

    public init(
        accepted: Result<[AcceptOutcome], StoreError>, acknowledged: Result<[Int], StoreError>, completed: Result<[Int], StoreError>,
        rerouted: Result<[Int], StoreError>
    ) {
        self.accepted = accepted
        self.acknowledged = acknowledged
        self.completed = completed
        self.rerouted = rerouted
    }
}
