import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// The relay-link protocol on one outgoing link, as the origin runs it, without I/O
/// (docs/PROTOCOL.md, "Relay links"): greets the peer, keeps its directory in step, pushes
/// the forwarding queue for it with a window of Forwards in flight (FLASH first: the store
/// hands them out in that order), and turns each answer into what the store must do. The
/// shell (`OutgoingLinkHandler`) carries the requests, loads the backlog and commits the
/// completions; it owns one `LinkSession` per connection.
struct LinkSession {
    struct Settings: Sendable {
        /// Forwards in flight at once (the responder works on at most 256 of a link's).
        var window = 256
        /// How long an envelope refused for a temporary reason waits before it is tried again.
        var retryAfterTemporarySeconds: UInt64 = 15
        /// At most this many envelopes wait out a temporary refusal; past it the oldest is
        /// tried again early (the answer costs a round trip, never a loss).
        var maximumDeferred = 10_000
        /// Directory entries in one push, and their bytes (one entry may pass alone).
        var maximumEntriesPerPush = 8_192
        var maximumPushBytes = 512 * 1024
        /// A Ping after this long without a request, so that a dead link is noticed.
        var pingAfterSeconds: UInt64 = 30
    }

    enum Action: Sendable {
        case send(LinkLinkRequest)
        /// Load up to `limit` envelopes of the forwarding queue for this peer, leaving out
        /// `excluding`, and hand them to `loaded(_:limit:directory:now:)`.
        case load(excluding: Set<MessageID>, limit: Int)
        /// Commit these completions (custody transferred, or undeliverable).
        case complete([ForwardCompletion])
        /// Verify and store entries the peer sent (an answer to our fetch), from `since`.
        case storeDirectory(entries: [Data], since: Int, checkpoint: Data)
        /// The peer says the recipient's home is `homeRelay`: re-route if our own verified
        /// directory agrees, else the envelope waits.
        case notHome(id: MessageID, mailbox: Mailbox, homeRelay: String)
        /// The greeting completed.
        case established
        /// The peer refused our directory as a fork (or we found one): alarm, keep evidence,
        /// stop directory exchange on this link.
        case fork(String)
        /// A proxied request's answer, for the device that asked.
        case proxied(token: UInt64, LinkLinkReply)
        /// Something the operator should read; the link goes on.
        case warn(String)
        /// The peer ends the link (shutting down, say): close, and reconnect later.
        case peerClosing(String)
        /// The blob lane (LinkSession+Blobs): load forwards, read a part, end a forward.
        case loadBlobs(excluding: Set<BlobID>, limit: Int)
        case readBlob(BlobID, offset: UInt64, length: Int)
        case completeBlob(BlobID, refused: String?)
        case close(String)
    }

    enum Pending {
        case hello
        case forward(OutgoingEnvelope)
        case push(through: Int)
        case fetch
        case ping
        case proxy(token: UInt64)
        case blob(BlobID)
    }

    let localName: String
    let peerName: String
    let settings: Settings
    private(set) var established = false
    private(set) var closed = false
    /// The peer's directory count and head as it last told us.
    private(set) var peerCount = 0
    private var peerHead = Data()
    /// A fork was met on this link: no more directory exchange until the relay restarts
    /// (an admin resolves it).
    private(set) var directoryExchangeStopped = false
    /// A push refused for another reason: not tried again until our directory changes.
    private var pushRefusedAt: Int?
    private var nextRequestID: UInt64 = 1
    private var pending: [UInt64: Pending] = [:]
    private var pushing = false
    private var fetching = false
    /// Ids of Forwards in flight.
    private(set) var inFlight: Set<MessageID> = []
    /// Ids refused for a temporary reason, and when each may go again.
    private(set) var deferred: [MessageID: UInt64] = [:]
    /// Ids answered for good whose completion the store has not committed yet: still in the
    /// forwarding queue, so loads leave them out (else they would go again).
    private(set) var completing: Set<MessageID> = []
    private(set) var loading = false
    /// The last load found less than it had room for and nothing was added since: the queue
    /// holds nothing for this peer that is not in flight, so a new envelope goes straight out.
    private(set) var caughtUp = false
    /// Envelopes were committed while a load ran (it may not have seen them).
    private var wokenWhileLoading = false
    private var lastRequestAt: UInt64 = 0
    /// Blobs for this peer, below envelopes (LinkSession+Blobs).
    var blobs: LinkBlobLane

    init(localName: String, peerName: String, settings: Settings = Settings()) {
        self.localName = localName
        self.peerName = peerName
        self.settings = settings
        self.blobs = LinkBlobLane(peerName: peerName)
    }

    // MARK: Events

    /// The transport is up: greet.
    mutating func start(directory: RelayDirectory.Snapshot, now: UInt64) -> [Action] {
        var hello = LinkLinkHello()
        hello.protocolVersion = LinkCodec.protocolVersion
        hello.relayName = localName
        hello.directoryCount = UInt64(directory.count)
        hello.directoryHead = Data(directory.state.headHash.bytes)
        return [request(.hello(hello), .hello, now: now)]
    }

    /// An answer from the peer.
    mutating func receive(_ reply: LinkLinkReply, directory: RelayDirectory.Snapshot, now: UInt64) -> [Action] {
        guard !closed else { return [] }
        if reply.requestID == 0, case .error(let error)? = reply.body {
            // Unasked: the peer is shutting down, or ends the link for a reason it gives.
            closed = true
            return [.peerClosing("relay \(peerName) ends the link: \(error.message)")]
        }
        guard let request = pending.removeValue(forKey: reply.requestID) else {
            return close("the peer answered request \(reply.requestID), which is not outstanding")
        }
        switch request {
        case .hello:
            return welcomed(reply, directory: directory, now: now)
        case .forward(let envelope):
            inFlight.remove(envelope.id)
            guard case .forwardResult(let result)? = reply.body, result.id == Data(envelope.id.bytes) else {
                if case .error(let error)? = reply.body, error.code == .directoryFork {
                    // The envelope waits until an admin resolves the fork.
                    postpone(envelope.id, now: now)
                    directoryExchangeStopped = true
                    return [.fork("relay \(peerName) says our directories fork: \(error.message)")] + pump(now: now)
                }
                if case .error(let error)? = reply.body { return close("the peer refused a Forward: \(error.message)") }
                return close("the peer answered a Forward with something other than its result")
            }
            return forwarded(envelope, result, directory: directory, now: now) + pump(now: now)
        case .push(let through):
            pushing = false
            switch reply.body {
            case .directoryHead(let head)?:
                peerCount = Int(clamping: head.directoryCount)
                peerHead = head.directoryHead
                return exchangeDirectory(directory, now: now) + (peerCount < through ? [] : pump(now: now))
            case .error(let error)? where error.code == .directoryFork:
                directoryExchangeStopped = true
                return [.fork("relay \(peerName) says our directory forks from its own: \(error.message)")]
            case .error(let error)?:
                pushRefusedAt = directory.count
                return [.warn("relay \(peerName) refused directory entries: \(error.message)")]
            default:
                return close("the peer answered a DirectoryPush with something other than its head")
            }
        case .fetch:
            fetching = false
            guard case .directoryEntries(let entries)? = reply.body else {
                return close("the peer answered a DirectoryFetch with something other than entries")
            }
            peerCount = Int(clamping: entries.directoryCount)
            peerHead = Data()
            guard !entries.entries.isEmpty else { return [] }
            return [.storeDirectory(entries: entries.entries, since: Int(clamping: entries.since), checkpoint: entries.checkpoint)]
        case .ping:
            return []
        case .proxy(let token):
            return [.proxied(token: token, reply)]
        case .blob(let id):
            return blobAnswered(id, reply, now: now)
        }
    }

    /// The backlog loaded for a `.load` action: sends what fits in the window.
    mutating func loaded(_ envelopes: [OutgoingEnvelope], limit: Int, directory: RelayDirectory.Snapshot, now: UInt64) -> [Action] {
        loading = false
        guard established, !closed else { return [] }
        var actions: [Action] = []
        for envelope in envelopes {
            if let action = forward(envelope, directory: directory, now: now) { actions.append(action) }
        }
        if wokenWhileLoading {
            wokenWhileLoading = false
        } else if envelopes.count < limit {
            caughtUp = true
        }
        return actions + pump(now: now)
    }

    /// An envelope just committed for this peer: straight out when the link is caught up and
    /// has room (no load), else it waits for the next load.
    mutating func offer(_ envelope: OutgoingEnvelope, directory: RelayDirectory.Snapshot, now: UInt64) -> [Action] {
        guard established, !closed else { return [] }
        if caughtUp, !loading, inFlight.count < settings.window, let action = forward(envelope, directory: directory, now: now) {
            return [action]
        }
        return wake(now: now)
    }

    /// A Forward for `envelope`, now in flight; nil for one already in flight, waiting, being
    /// completed, or expired (the expiry sweep tombstones it: nothing goes out that the
    /// peer would drop).
    private mutating func forward(_ envelope: OutgoingEnvelope, directory: RelayDirectory.Snapshot, now: UInt64) -> Action? {
        guard !inFlight.contains(envelope.id), deferred[envelope.id] == nil, !completing.contains(envelope.id), envelope.expiresAt > now else {
            return nil
        }
        var forward = LinkForward()
        forward.id = Data(envelope.id.bytes)
        forward.recipient = envelope.mailbox.name
        forward.precedence = WirePrecedence(rawValue: envelope.precedence.rawValue) ?? .routine
        forward.requestedTtl = WireTTLClass(rawValue: Int(envelope.requestedTTL)) ?? .default
        // Durations, never clock readings: the relays' clocks may disagree.
        forward.ageSeconds = now > envelope.arrivedAt ? now - envelope.arrivedAt : 0
        forward.remainingSeconds = envelope.expiresAt - now
        forward.hops = UInt32(envelope.hops)
        forward.originDirectoryCount = UInt64(directory.count)
        forward.originDirectoryHead = Data(directory.state.headHash.bytes)
        forward.envelope = Data(envelope.body)
        inFlight.insert(envelope.id)
        return request(.forward(forward), .forward(envelope), now: now)
    }

    /// The store committed these completions (or failed to: then they go again, a repeat
    /// the peer answers as committed).
    mutating func completionsCommitted(_ ids: [MessageID], now: UInt64) -> [Action] {
        completing.subtract(ids)
        return pump(now: now)
    }

    /// New envelopes for this peer were committed.
    mutating func wake(now: UInt64) -> [Action] {
        caughtUp = false
        if loading { wokenWhileLoading = true }
        return pump(now: now)
    }

    /// Our directory changed (a publish, or entries from another link).
    mutating func directoryChanged(_ directory: RelayDirectory.Snapshot, now: UInt64) -> [Action] {
        guard established else { return [] }
        if let refusedAt = pushRefusedAt, refusedAt != directory.count { pushRefusedAt = nil }
        return exchangeDirectory(directory, now: now)
    }

    /// Once a second or so: deferred envelopes whose wait is over go again; an idle link pings.
    mutating func tick(now: UInt64) -> [Action] {
        guard established, !closed else { return [] }
        blobs.tick(now: now)
        let due = deferred.filter { $0.value <= now }.map(\.key)
        if !due.isEmpty {
            for id in due { deferred[id] = nil }
            caughtUp = false
        }
        var actions = pump(now: now)
        if actions.isEmpty, pending.isEmpty, now >= lastRequestAt + settings.pingAfterSeconds {
            var ping = WirePing()
            ping.data = Data([1])
            actions.append(request(.ping(ping), .ping, now: now))
        }
        return actions
    }

    /// A device's request to pass on to the peer (prekeys, status); `token` comes back with
    /// the answer. Nil while the link is not established.
    mutating func proxy(_ body: LinkLinkRequest.OneOf_Body, token: UInt64, now: UInt64) -> Action? {
        guard established, !closed else { return nil }
        return request(body, .proxy(token: token), now: now)
    }

    // MARK: Internals

    private mutating func welcomed(_ reply: LinkLinkReply, directory: RelayDirectory.Snapshot, now: UInt64) -> [Action] {
        switch reply.body {
        case .welcome(let welcome)?:
            guard welcome.protocolVersion == LinkCodec.protocolVersion else {
                return close("relay \(peerName) speaks relay-link version \(welcome.protocolVersion); this relay speaks version \(LinkCodec.protocolVersion)")
            }
            // The handshake proved the key our directory names for `peerName`; an empty name
            // is a relay whose own directory does not list it yet (we push the entries).
            guard welcome.relayName == peerName || welcome.relayName.isEmpty else {
                return close("the relay at \(peerName)'s key calls itself \"\(welcome.relayName.prefix(64))\"")
            }
            established = true
            peerCount = Int(clamping: welcome.directoryCount)
            peerHead = welcome.directoryHead
            return [.established] + exchangeDirectory(directory, now: now) + pump(now: now)
        case .error(let error)?:
            return close("relay \(peerName) refused the link: \(error.message)")
        default:
            return close("relay \(peerName) answered Hello with something other than a welcome")
        }
    }

    /// Pushes what the peer lacks, or fetches what we lack; a head that differs at the same
    /// count is a fork, found here as well as by the peer.
    private mutating func exchangeDirectory(_ directory: RelayDirectory.Snapshot, now: UInt64) -> [Action] {
        guard !directoryExchangeStopped, !pushing, !fetching else { return [] }
        if peerCount == directory.count {
            guard peerHead == Data(directory.state.headHash.bytes) || peerHead.isEmpty else {
                directoryExchangeStopped = true
                return [.fork("relay \(peerName) holds another entry \(peerCount - 1) than this relay (same count, another head)")]
            }
            return []
        }
        if peerCount > directory.count {
            var fetch = WireDirectoryFetch()
            fetch.since = UInt64(directory.count)
            fetching = true
            return [request(.directoryFetch(fetch), .fetch, now: now)]
        }
        guard pushRefusedAt == nil else { return [] }
        var push = LinkDirectoryPush()
        push.since = UInt64(peerCount)
        var through = peerCount
        var bytes = 0
        // Bounded in entries and bytes, well inside a message (entries are at most ~20 KiB).
        while through < directory.count, through - peerCount < settings.maximumEntriesPerPush,
              push.entries.isEmpty || bytes + directory.encodedEntries[through].count <= settings.maximumPushBytes {
            bytes += directory.encodedEntries[through].count
            push.entries.append(Data(directory.encodedEntries[through]))
            through += 1
        }
        if through == directory.count, let checkpoint = directory.checkpoint { push.checkpoint = Data(checkpoint.encoded()) }
        pushing = true
        return [request(.directoryPush(push), .push(through: through), now: now)]
    }

    private mutating func forwarded(
        _ envelope: OutgoingEnvelope, _ result: LinkForwardResult, directory: RelayDirectory.Snapshot, now: UInt64
    ) -> [Action] {
        // The peer's directory only grows: its count in the answer tells which side is behind.
        if result.directoryCount > UInt64(peerCount) {
            peerCount = Int(clamping: result.directoryCount)
            peerHead = Data()
        }
        switch result.outcome {
        case .committed:
            completing.insert(envelope.id)
            return [.complete([ForwardCompletion(id: envelope.id, destination: peerName, outcome: .transferred)])]
        case .permanent where result.reason == .alreadyDone:
            // An earlier transmission was committed there and its answer lost: custody passed.
            completing.insert(envelope.id)
            return [.complete([ForwardCompletion(id: envelope.id, destination: peerName, outcome: .transferred)])]
        case .permanent:
            completing.insert(envelope.id)
            return [.complete([ForwardCompletion(id: envelope.id, destination: peerName, outcome: .undeliverable(Self.reason(result.reason)))])]
        case .temporary:
            switch result.reason {
            case .directoryBehind:
                // Entries go (or come) first; the envelope follows a second later.
                postpone(envelope.id, now: now, seconds: 1)
                return exchangeDirectory(directory, now: now)
            case .notHome:
                postpone(envelope.id, now: now)
                return [.notHome(id: envelope.id, mailbox: envelope.mailbox, homeRelay: result.homeRelay)]
            default:
                postpone(envelope.id, now: now)
                return []
            }
        case .unspecified, .UNRECOGNIZED:
            return close("relay \(peerName) answered a Forward with an unknown outcome")
        }
    }

    /// The reason a permanent refusal records (`valise sent` shows it).
    static func reason(_ reason: LinkForwardResult.Reason) -> UndeliverableReason {
        switch reason {
        case .recipientRevoked: .recipientRevoked
        case .unknownRecipient: .unknownRecipient
        default: .refusedByRelay
        }
    }

    private mutating func postpone(_ id: MessageID, now: UInt64, seconds: UInt64? = nil) {
        if deferred.count >= settings.maximumDeferred, let oldest = deferred.min(by: { $0.value < $1.value })?.key {
            deferred[oldest] = nil
        }
        deferred[id] = now + (seconds ?? settings.retryAfterTemporarySeconds)
    }

    /// Envelopes first; blobs only when no envelope waits to be sent.
    private mutating func pump(now: UInt64) -> [Action] {
        guard established, !closed, !loading, !caughtUp, inFlight.count < settings.window else { return pumpBlobs(now: now) }
        loading = true
        return [.load(excluding: inFlight.union(deferred.keys).union(completing), limit: settings.window - inFlight.count)]
    }

    mutating func request(_ body: LinkLinkRequest.OneOf_Body, _ what: Pending, now: UInt64) -> Action {
        var message = LinkLinkRequest()
        message.requestID = nextRequestID
        message.body = body
        pending[nextRequestID] = what
        nextRequestID += 1
        lastRequestAt = now
        return .send(message)
    }

    mutating func close(_ reason: String) -> [Action] {
        closed = true
        return [.close(reason)]
    }
}
