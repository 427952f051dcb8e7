import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// The relay-link protocol as the destination answers it, for one admitted incoming link,
/// without I/O (docs/PROTOCOL.md, "Relay links"): a request and the directory as it is now
/// in, what to do out. The first request must be LinkHello naming the relay whose key made
/// the handshake.
struct LinkRequestProcessor {
    /// Hops an envelope may take: origin, old home, new home.
    static let maximumHops: UInt32 = 3

    enum Outcome {
        case reply(LinkLinkReply)
        case replyAndClose(LinkLinkReply)
        /// Commit the envelope durably, then answer with `LinkRequestProcessor.result`.
        case forward(requestID: UInt64, IncomingEnvelope)
        /// Verify and store entries (from sequence `since`), then answer the new head.
        case push(requestID: UInt64, since: UInt64, entries: [Data], checkpoint: Data)
        /// Hand out these members' bundles, limited per link.
        case prekeyFetch(requestID: UInt64, [PrekeyDispenser.Target], envelopeKeyOnly: Bool)
        /// Look these ids up and answer signed statuses.
        case status(requestID: UInt64, ids: [MessageID], nonce: [UInt8])
        /// Declare the offered blob (`beginBlob`, expiring `lifetime` seconds from now), then
        /// answer with `blobStored`.
        case blobOffer(requestID: UInt64, id: BlobID, size: UInt64, lifetime: UInt64, fetches: UInt32)
        /// Append the part durably (`appendBlob`), then answer with `blobStored`.
        case blobPart(requestID: UInt64, id: BlobID, offset: UInt64, bytes: [UInt8])
    }

    struct Settings {
        let maximumEnvelopeBytes: Int
        let maximumEntriesPerFetch: Int
        let defaultTTL: TTLClass
        let maximumTTL: TTLClass
        /// The largest blob taken (`queue.maxBlobBytes`); 0: this relay keeps no blobs.
        var maximumBlobBytes: UInt64 = 0
    }

    /// The linked relay, as the handshake's key names it in the directory.
    let peerName: String
    let settings: Settings
    private(set) var greeted = false
    /// Blobs offered on this link and the bytes the store last said it holds of each
    /// (LinkRequestProcessor+Blobs): a part must follow an offer, at that offset.
    var offeredBlobs: [BlobID: OfferedBlob] = [:]

    init(peerName: String, settings: Settings) {
        self.peerName = peerName
        self.settings = settings
    }

    mutating func handle(_ bytes: [UInt8], directory: RelayDirectory.Snapshot) -> Outcome {
        let request: LinkLinkRequest
        do {
            request = try LinkCodec.decodeRequest(bytes)
        } catch {
            return .replyAndClose(Self.error(0, .badRequest, "the message does not decode as a LinkRequest"))
        }
        let id = request.requestID
        guard id != 0 else { return .replyAndClose(Self.error(0, .badRequest, "every link request needs a non-zero request id")) }
        guard greeted else {
            guard case .hello(let hello)? = request.body else {
                return .replyAndClose(Self.error(id, .badRequest, "the first link request must be a LinkHello"))
            }
            guard hello.protocolVersion == LinkCodec.protocolVersion else {
                return .replyAndClose(Self.error(
                    id, .unsupportedVersion, "this relay speaks relay-link version \(LinkCodec.protocolVersion), not \(hello.protocolVersion)"))
            }
            guard hello.relayName == peerName else {
                return .replyAndClose(Self.error(id, .notARelay, "the key of this link belongs to relay \(peerName), not \(hello.relayName.prefix(64))"))
            }
            greeted = true
            var welcome = LinkLinkWelcome()
            welcome.protocolVersion = LinkCodec.protocolVersion
            welcome.relayName = directory.relayName ?? ""
            welcome.directoryCount = UInt64(directory.count)
            welcome.directoryHead = Data(directory.state.headHash.bytes)
            return .reply(Self.reply(id, .welcome(welcome)))
        }
        switch request.body {
        case .hello?:
            return .replyAndClose(Self.error(id, .badRequest, "LinkHello was already sent"))
        case .forward(let forward)?:
            return judge(forward, id: id, directory: directory)
        case .directoryPush(let push)?:
            guard push.since <= UInt64(directory.count) else {
                // A gap: nothing is stored; the head tells the initiator where to start.
                var head = LinkDirectoryHead()
                head.directoryCount = UInt64(directory.count)
                head.directoryHead = Data(directory.state.headHash.bytes)
                return .reply(Self.reply(id, .directoryHead(head)))
            }
            return .push(requestID: id, since: push.since, entries: push.entries, checkpoint: push.checkpoint)
        case .directoryFetch(let fetch)?:
            return .reply(Self.reply(id, .directoryEntries(RelayRequestProcessor.entries(
                fetch, directory, maximumEntriesPerFetch: settings.maximumEntriesPerFetch))))
        case .prekeyFetch(let fetch)?:
            guard !fetch.members.isEmpty, fetch.members.count <= RelayRequestProcessor.maximumPrekeyMembers else {
                return .reply(Self.error(id, .badRequest, "a proxied prekey fetch names 1 to \(RelayRequestProcessor.maximumPrekeyMembers) members"))
            }
            // Only members homed here: another relay's members are fetched from their home.
            let targets = fetch.members.map { asked -> PrekeyDispenser.Target in
                guard let name = try? MemberName(asked), let member = directory.state.members[name], member.isActive,
                      Self.isHome(name, directory) else {
                    return .init(asked: asked, member: nil)
                }
                return .init(asked: asked, member: (name, member.identityKey))
            }
            return .prekeyFetch(requestID: id, targets, envelopeKeyOnly: fetch.envelopeKeyOnly)
        case .statusQuery(let query)?:
            guard query.ids.count <= RelayRequestProcessor.maximumStatusIDs,
                  (MessageStatusStatement.minimumNonceBytes...MessageStatusStatement.maximumNonceBytes).contains(query.nonce.count) else {
                return .reply(Self.error(id, .badRequest, "a status query names at most \(RelayRequestProcessor.maximumStatusIDs) ids, with a nonce of 16 to 64 bytes"))
            }
            let ids = query.ids.compactMap { MessageID(bytes: Array($0)) }
            guard ids.count == query.ids.count else { return .reply(Self.error(id, .badRequest, "message ids are 16 bytes")) }
            return .status(requestID: id, ids: ids, nonce: Array(query.nonce))
        case .ping(let ping)?:
            var pong = WirePong()
            pong.data = ping.data.prefix(RelayRequestProcessor.maximumPingData)
            return .reply(Self.reply(id, .pong(pong)))
        case .blobOffer(let offer)?:
            return blobOffer(offer, requestID: id)
        case .blobPart(let part)?:
            return blobPart(part, requestID: id)
        case nil:
            return .reply(Self.error(id, .badRequest, "the message has no request this relay knows"))
        }
    }

    /// Whether `member` is homed at this relay, as its directory says. A relay the directory
    /// does not name is everyone's home only while the organisation has no relay at all.
    static func isHome(_ member: MemberName, _ directory: RelayDirectory.Snapshot) -> Bool {
        guard let home = directory.state.homeRelay(of: member) else { return true }
        return home.name == directory.relayName
    }

    /// A Forward's permanent and temporary refusals, in the order PROTOCOL.md gives them
    /// ("Forwarding"); what passes is committed before it is answered, and the store's
    /// answer (a duplicate, an id already done, a full mailbox) is `result`'s to give.
    private func judge(_ forward: LinkForward, id: UInt64, directory: RelayDirectory.Snapshot) -> Outcome {
        func refuse(_ outcome: LinkForwardResult.Outcome, _ reason: LinkForwardResult.Reason, _ message: String, home: String = "") -> Outcome {
            var result = LinkForwardResult()
            result.id = forward.id
            result.outcome = outcome
            result.reason = reason
            result.message = message
            result.homeRelay = home
            result.directoryCount = UInt64(directory.count)
            return .reply(Self.reply(id, .forwardResult(result)))
        }
        // 1. Malformed: refused for good, so that one bad envelope never blocks a link.
        guard let messageID = MessageID(bytes: Array(forward.id)), (1...MemberName.maximumLength).contains(forward.recipient.utf8.count),
              let precedence = Precedence(rawValue: forward.precedence.rawValue),
              let ttl = Self.ttl(forward.requestedTtl, default: settings.defaultTTL),
              forward.hops > 0, forward.remainingSeconds > 0, forward.originDirectoryHead.count == EntryHash.byteCount,
              !forward.envelope.isEmpty, forward.envelope.count <= settings.maximumEnvelopeBytes else {
            return refuse(.permanent, .badEnvelope, "the Forward is malformed (id, recipient, precedence, TTL class, hops, lifetime, head or envelope size)")
        }
        // 2. Hops: origin, old home, new home.
        guard forward.hops <= Self.maximumHops else {
            return refuse(.permanent, .hopLimit, "an envelope takes at most \(Self.maximumHops) relays; this one has \(forward.hops)")
        }
        // 3. Directories: this relay judges only at or past the origin's head, and on the same log.
        let originCount = forward.originDirectoryCount
        guard UInt64(directory.count) >= originCount else {
            return refuse(.temporary, .directoryBehind, "this relay's directory is behind the origin's")
        }
        if originCount > 0, Data(directory.verifier.hashes[Int(originCount) - 1].bytes) != forward.originDirectoryHead {
            return .reply(Self.error(id, .directoryFork, "the origin's entry \(originCount - 1) differs from this relay's: the directories have forked"))
        }
        // 4. The recipient, in this relay's directory.
        guard let recipient = try? MemberName(forward.recipient), let member = directory.state.members[recipient] else {
            return refuse(.permanent, .unknownRecipient, "no member is called \(forward.recipient.prefix(130))")
        }
        if case .revoked(_, let sequence) = member.status {
            // Final when the origin could have seen the revocation; otherwise the origin
            // learns it first (it fetches: this answer's count is higher than its own).
            guard sequence < originCount else {
                return refuse(.temporary, .directoryBehind, "\(recipient) was revoked in an entry the origin has not seen")
            }
            return refuse(.permanent, .recipientRevoked, "\(recipient) was revoked")
        }
        guard Self.isHome(recipient, directory) else {
            let home = directory.state.homeRelay(of: recipient)?.name ?? ""
            return refuse(.temporary, .notHome, "\(recipient)'s home relay is \(home)", home: home)
        }
        // 5. Limits and the commit: the store's answer.
        return .forward(requestID: id, IncomingEnvelope(
            mailbox: Mailbox(recipient.value), id: messageID, precedence: precedence, ttl: min(ttl, settings.maximumTTL),
            requestedTTL: UInt8(forward.requestedTtl.rawValue), destination: nil,
            lifetime: CarriedLifetime(age: forward.ageSeconds, remaining: forward.remainingSeconds), hops: UInt8(forward.hops),
            body: Array(forward.envelope)))
    }

    static func ttl(_ wire: WireTTLClass, default defaultTTL: TTLClass) -> TTLClass? {
        switch wire {
        case .default: defaultTTL
        case .hour: .hour
        case .day: .day
        case .week: .week
        case .month: .month
        case .UNRECOGNIZED: nil
        }
    }

    /// The answer to a committed (or refused) Forward.
    static func result(_ requestID: UInt64, id: MessageID, outcome: AcceptOutcome, now: UInt64, directoryCount: Int) -> LinkLinkReply {
        var result = LinkForwardResult()
        result.id = Data(id.bytes)
        result.directoryCount = UInt64(directoryCount)
        switch outcome {
        case .accepted(let expiresAt, _):
            result.outcome = .committed
            result.expiresIn = expiresAt > now ? expiresAt - now : 0
        case .refused(.alreadyDone):
            // This relay had custody before (delivered, expired or passed on since): the
            // origin's copy is a repeat of one whose answer was lost, and goes.
            result.outcome = .permanent
            result.reason = .alreadyDone
            result.message = "this relay took custody of this id before"
        case .refused(.idInUse):
            result.outcome = .permanent
            result.reason = .badEnvelope
            result.message = "this message id is in use by another message here"
        case .refused(.mailboxFull):
            result.outcome = .temporary
            result.reason = .mailboxFull
            result.message = "the recipient's mailbox is full"
        case .refused(.storageFull):
            result.outcome = .temporary
            result.reason = .storageFull
            result.message = "this relay's storage is full"
        case .refused(.destinationFull):
            result.outcome = .temporary
            result.reason = .storageFull
            result.message = "this relay's queue for another relay is full"
        }
        return reply(requestID, .forwardResult(result))
    }

    static func reply(_ requestID: UInt64, _ body: LinkLinkReply.OneOf_Body) -> LinkLinkReply {
        var reply = LinkLinkReply()
        reply.requestID = requestID
        reply.body = body
        return reply
    }

    static func error(_ requestID: UInt64, _ code: LinkLinkError.Code, _ message: String) -> LinkLinkReply {
        var error = LinkLinkError()
        error.code = code
        error.message = message
        return reply(requestID, .error(error))
    }
}
