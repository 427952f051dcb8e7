import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore
import ValiseWire

/// The relay protocol for one admitted connection, without I/O: a client message and the
/// directory as it is now in, what to answer out. The first message must be a Hello; an
/// admin's key may only fetch and publish the directory.
struct RelayRequestProcessor {
    static let protocolVersion = WireCodec.protocolVersion
    static let maximumPingData = 64
    /// Answers to a fetch stop growing past this many bytes of entries, well inside a
    /// client's message limit.
    static let maximumFetchBytes = 512 * 1024

    static let maximumStatusIDs = 100
    /// Members one prekey fetch may name: a hundred bundles stay well inside a message, also
    /// with post-quantum prekeys (about 5 KiB a bundle).
    static let maximumPrekeyMembers = 100

    enum Outcome {
        case reply(WireRelayMessage)
        /// Answer, then close the connection.
        case replyAndClose(WireRelayMessage)
        /// Verify and store entries off the event loop, then answer. The entries stay as
        /// decoded from the message: copying them is left to the publisher's thread too.
        case publish(requestID: UInt64, entries: [Data], checkpoint: Data)
        /// Store the envelope durably, then answer Accepted.
        case send(requestID: UInt64, IncomingEnvelope)
        /// Start delivering this device's mailbox with this window.
        case fetch(window: Int)
        /// The device has stored these envelopes.
        case acknowledge([MessageID])
        /// Look these ids up and answer signed statuses.
        case status(requestID: UInt64, ids: [MessageID], nonce: [UInt8])
        /// Store this device's checked prekeys, then answer PrekeysStored.
        case prekeyUpload(requestID: UInt64, Mailbox, signedPrekey: [UInt8], signedPrekeySignature: [UInt8],
                          envelopeKey: [UInt8], envelopeKeySignature: [UInt8], oneTimePrekeys: [[UInt8]], kem: KEMPrekeyUpload)
        /// Hand out these members' bundles (`PrekeyDispenser` decides the limits).
        case prekeyFetch(requestID: UInt64, [PrekeyDispenser.Target], envelopeKeyOnly: Bool)
        /// Declare (or resume) a blob, then answer BlobState.
        case blobUpload(requestID: UInt64, BlobUploadRequest)
        /// Store a blob's bytes durably, then answer BlobState (BLOB_MISMATCH at a bad last byte).
        case blobChunk(requestID: UInt64, BlobID, offset: UInt64, bytes: [UInt8])
        /// Read a complete blob's bytes and answer BlobData (NO_SUCH_BLOB if none).
        case blobFetch(requestID: UInt64, BlobID, offset: UInt64, length: Int)
        /// One declared fetch of this blob completed; no answer.
        case blobFetched(BlobID)
    }

    struct Settings {
        let maximumEntriesPerFetch: Int
        let maximumEnvelopeBytes: Int
        let deliveryWindow: Int
        let defaultTTL: TTLClass
        let maximumTTL: TTLClass
        /// The largest blob taken (queue.maxBlobBytes; 0: none, the relay has no blob store).
        var maximumBlobBytes: UInt64 = 0
    }

    let admission: Admission
    let settings: Settings
    private(set) var greeted = false

    init(admission: Admission, settings: Settings) {
        self.admission = admission
        self.settings = settings
    }

    var maximumEntriesPerFetch: Int { settings.maximumEntriesPerFetch }

    mutating func handle(_ bytes: [UInt8], directory: RelayDirectory.Snapshot) -> Outcome {
        let message: WireClientMessage
        do {
            message = try WireCodec.decodeClientMessage(bytes)
        } catch {
            return .replyAndClose(Self.error(0, .badRequest(("the message does not decode as a ClientMessage"))))
        }
        let id = message.requestID
        // 0 is the id of what the relay sends unasked: an answer carrying it could not be
        // told from one (docs/PROTOCOL.md, "Relay protocol").
        guard id != 0 || !Self.hasAnswer(message.body) else {
            return .replyAndClose(Self.error(0, .badRequest("a request that has an answer needs a non-zero request id")))
        }
        guard greeted else {
            guard case .hello(let hello) = message.body else {
                return .replyAndClose(Self.error(id, .badRequest("the first message must be a Hello")))
            }
            if let refusal = Self.versionRefusal(hello, id: id) { return .replyAndClose(refusal) }
            greeted = true
            var welcome = WireWelcome()
            welcome.protocolVersion = Self.protocolVersion
            welcome.relayName = directory.relayName ?? ""
            welcome.directoryCount = UInt64(directory.count)
            welcome.directoryHead = Data(directory.state.headHash.bytes)
            welcome.maxBlobBytes = settings.maximumBlobBytes
            switch admission {
            case .admin: welcome.role = .admin
            case .device: welcome.role = .device
            case .revoked(_, let entries):
                welcome.role = .revoked
                welcome.directoryCount = UInt64(entries)
                welcome.directoryHead = Data(directory.verifier.hashes[entries - 1].bytes)
            case .notHome(_, let home):
                welcome.role = .notHome
                welcome.homeRelay = home
            }
            return .reply(Self.message(id, .welcome(welcome)))
        }

        if case .revoked(_, let entries) = admission {
            switch message.body {
            case .ping:
                break
            case .directoryFetch(let fetch):
                return .reply(Self.message(id, .directoryEntries(self.entries(fetch, directory, upTo: entries))))
            default:
                return .reply(Self.error(id, RelayError(
                    .revoked, code: "revoked",
                    message: "the organisation revoked this device; it may only read the directory up to its revocation")))
            }
        }

        // A device homed elsewhere reads the directory here to verify where its home is;
        // the connection stays open so that it can (docs/PROTOCOL.md, "not home").
        if case .notHome(let name, let home) = admission {
            switch message.body {
            case .ping, .directoryFetch, .hello:
                break
            default:
                return .reply(Self.error(id, RelayError(.notHome, code: "not-home", message: Self.notHomeMessage(name, home: home))))
            }
        }

        switch message.body {
        case .hello:
            return .replyAndClose(Self.error(id, .badRequest("Hello was already sent")))
        case .ping(let ping):
            guard ping.data.count <= Self.maximumPingData else {
                return .reply(Self.error(id, RelayError(.tooLarge, code: "too-large", message: "ping data is limited to \(Self.maximumPingData) bytes")))
            }
            var pong = WirePong()
            pong.data = ping.data
            return .reply(Self.message(id, .pong(pong)))
        case .directoryFetch(let fetch):
            return .reply(Self.message(id, .directoryEntries(entries(fetch, directory))))
        case .directoryPublish(let publish):
            // Refused before a single entry is decoded (docs/PROTOCOL.md, DirectoryPublish).
            guard admission.mayPublishDirectory else {
                return .reply(Self.error(id, RelayError(
                    .notAllowed, code: "not-allowed",
                    message: "only an administrator's key may publish directory entries; an administrator publishes them")))
            }
            return .publish(requestID: id, entries: publish.entries, checkpoint: publish.checkpoint)
        case .send(let send):
            return handleSend(send, id: id, directory: directory)
        case .fetch(let fetch):
            guard case .device = admission else { return .reply(Self.notAllowed(id)) }
            let asked = Int(fetch.window)
            return .fetch(window: asked == 0 ? settings.deliveryWindow : min(asked, settings.deliveryWindow))
        case .ack(let ack):
            guard case .device = admission else { return .reply(Self.notAllowed(id)) }
            return .acknowledge(ack.ids.compactMap { MessageID(bytes: Array($0)) })
        case .statusQuery(let query):
            guard case .device = admission else { return .reply(Self.notAllowed(id)) }
            guard query.ids.count <= Self.maximumStatusIDs else {
                return .reply(Self.error(id, RelayError(.tooLarge, code: "too-large", message: "at most \(Self.maximumStatusIDs) ids per status query")))
            }
            guard (MessageStatusStatement.minimumNonceBytes...MessageStatusStatement.maximumNonceBytes).contains(query.nonce.count) else {
                return .reply(Self.error(id, .badRequest("a status query needs a nonce of 16 to 64 bytes")))
            }
            let ids = query.ids.compactMap { MessageID(bytes: Array($0)) }
            guard ids.count == query.ids.count else { return .reply(Self.error(id, .badRequest("message ids are 16 bytes"))) }
            return .status(requestID: id, ids: ids, nonce: Array(query.nonce))
        case .prekeyUpload(let upload):
            return handlePrekeyUpload(upload, id: id, directory: directory)
        case .prekeyFetch(let fetch):
            guard case .device = admission else { return .reply(Self.notAllowed(id)) }
            guard !fetch.members.isEmpty else { return .reply(Self.error(id, .badRequest("a prekey fetch names at least one member"))) }
            guard fetch.members.count <= Self.maximumPrekeyMembers else {
                return .reply(Self.error(id, RelayError(.tooLarge, code: "too-large", message: "at most \(Self.maximumPrekeyMembers) members per prekey fetch")))
            }
            // A name that is not an active member gets its own error in the answer: one
            // unknown name does not fail the others.
            let targets = fetch.members.map { asked -> PrekeyDispenser.Target in
                guard let name = try? MemberName(asked), let member = directory.state.members[name], member.isActive else {
                    return .init(asked: asked, member: nil)
                }
                return .init(asked: asked, member: (name, member.identityKey))
            }
            return .prekeyFetch(requestID: id, targets, envelopeKeyOnly: fetch.envelopeKeyOnly)
        case .blobUpload(let upload):
            return handleBlobUpload(upload, id: id, directory: directory)
        case .blobChunk(let chunk):
            return handleBlobChunk(chunk, id: id)
        case .blobFetch(let fetch):
            return handleBlobFetch(fetch, id: id)
        case .blobFetched(let fetched):
            return handleBlobFetched(fetched)
        case nil:
            return .reply(Self.error(id, .badRequest("the message has no request this relay knows")))
        }
    }

    /// Every request but Fetch and Ack is answered, so needs an id to be answered under.
    static func hasAnswer(_ body: WireClientMessage.OneOf_Body?) -> Bool {
        switch body {
        case .fetch?, .ack?, .blobFetched?, nil: false
        default: true
        }
    }

    private func handlePrekeyUpload(_ upload: WirePrekeyUpload, id: UInt64, directory: RelayDirectory.Snapshot) -> Outcome {
        guard case .device(let name) = admission, let member = directory.state.members[name], member.isActive else {
            return .reply(Self.notAllowed(id))
        }
        guard upload.oneTimePrekeys.count <= PrekeyLimits.maximumOneTimePrekeys,
              upload.oneTimeKemPrekeys.count <= PrekeyLimits.maximumOneTimeKEMPrekeys else {
            return .reply(Self.error(id, RelayError(
                .tooLarge, code: "too-large",
                message: "at most \(PrekeyLimits.maximumOneTimePrekeys) one-time prekeys and \(PrekeyLimits.maximumOneTimeKEMPrekeys) one-time KEM prekeys per upload")))
        }
        guard upload.signedPrekey.count == 32, upload.oneTimePrekeys.allSatisfy({ $0.count == 32 }),
              let prekeySignature = try? Signature(bytes: Array(upload.signedPrekeySignature)) else {
            return .reply(Self.error(id, .badRequest("prekeys are 32 bytes and signatures 64")))
        }
        // Only keys the device's own identity key signed are handed to others.
        guard member.identityKey.isValidSignature(prekeySignature, for: Array(upload.signedPrekey), purpose: PQXDH.signedPrekeyPurpose) else {
            return .reply(Self.error(id, .badRequest("a prekey signature does not verify with this device's identity key")))
        }
        // A small-order key would make every sender's encryption fail: never hand one out.
        // (One-time prekeys are checked by the sender, whose PQXDH refuses them.)
        guard let signed = try? AgreementPublicKey(bytes: Array(upload.signedPrekey)), !signed.isSmallOrder else {
            return .reply(Self.error(id, .badRequest("a signed prekey is a small-order point")))
        }
        if let refusal = Self.checkEnvelopeKey(upload, identityKey: member.identityKey) {
            return .reply(Self.error(id, .badRequest(refusal)))
        }
        let kem: KEMPrekeyUpload
        switch Self.checkKEMPrekeys(upload, identity: member.identityKey) {
        case .success(let checked): kem = checked
        case .failure(let error): return .reply(Self.error(id, error))
        }
        return .prekeyUpload(
            requestID: id, Mailbox(name.value), signedPrekey: Array(upload.signedPrekey), signedPrekeySignature: Array(upload.signedPrekeySignature),
            envelopeKey: Array(upload.envelopeKemKey), envelopeKeySignature: Array(upload.envelopeKemKeySignature),
            oneTimePrekeys: upload.oneTimePrekeys.map { Array($0) }, kem: kem)
    }

    /// UNSUPPORTED_VERSION naming both versions for a Hello of another version (2, say: a
    /// client from before PQXDH), or nil; no older version is kept.
    static func versionRefusal(_ hello: WireHello, id: UInt64) -> WireRelayMessage? {
        guard hello.protocolVersion != protocolVersion else { return nil }
        return error(id, RelayError(
            .unsupportedVersion, code: "unsupported-version",
            message: "this relay speaks protocol version \(protocolVersion), not \(hello.protocolVersion)"))
    }

    /// The X-Wing envelope key must be one (1,216 bytes that swift-crypto parses as a key)
    /// and signed by the device's identity key in the directory; nil if so, else why not.
    static func checkEnvelopeKey(_ upload: WirePrekeyUpload, identityKey: SigningPublicKey) -> String? {
        guard let key = try? XWingPublicKey(bytes: Array(upload.envelopeKemKey)) else {
            return "the envelope key is not an X-Wing public key of \(XWingScheme.parameters.publicKeyByteCount) bytes"
        }
        guard let signature = try? Signature(bytes: Array(upload.envelopeKemKeySignature)),
              SealedEnvelope.isValidEnvelopeKey(key, signature: signature, identity: identityKey) else {
            return "the envelope key's signature does not verify with this device's identity key"
        }
        return nil
    }

    static func prekeysStored(_ requestID: UInt64, counts: PrekeyCounts) -> WireRelayMessage {
        var stored = WirePrekeysStored()
        stored.oneTimePrekeys = UInt32(counts.oneTime)
        stored.oneTimeKemPrekeys = UInt32(counts.oneTimeKEM)
        return message(requestID, .prekeysStored(stored))
    }

    private func handleSend(_ send: WireSend, id: UInt64, directory: RelayDirectory.Snapshot) -> Outcome {
        guard case .device = admission else { return .reply(Self.notAllowed(id)) }
        guard let messageID = MessageID(bytes: Array(send.id)) else {
            return .reply(Self.error(id, .badRequest("a message id is 16 bytes")))
        }
        guard send.envelope.count <= settings.maximumEnvelopeBytes else {
            return .reply(Self.error(id, RelayError(
                .tooLarge, code: "too-large", message: "the envelope is larger than this relay's \(settings.maximumEnvelopeBytes) bytes")))
        }
        guard !send.envelope.isEmpty else { return .reply(Self.error(id, .badRequest("the envelope is empty"))) }
        guard let recipient = try? MemberName(send.recipient), directory.state.members[recipient]?.isActive == true else {
            return .reply(Self.error(id, RelayError(
                .unknownRecipient, code: "unknown-recipient", message: "no active member is called \(send.recipient.prefix(130))")))
        }
        guard let precedence = Precedence(rawValue: send.precedence.rawValue) else {
            return .reply(Self.error(id, .badRequest("unknown precedence")))
        }
        guard let ttl = ttlClass(send.ttl) else { return .reply(Self.error(id, .badRequest("unknown TTL class"))) }
        // The class asked for is kept as it was asked (DEFAULT included) and delivered with
        // the envelope: the envelope's associated data binds it.
        // A recipient homed at another relay: into the forwarding queue for that relay.
        return .send(requestID: id, IncomingEnvelope(
            mailbox: Mailbox(recipient.value), id: messageID, precedence: precedence, ttl: min(ttl, settings.maximumTTL),
            requestedTTL: UInt8(send.ttl.rawValue), destination: Federation.destination(of: recipient, in: directory),
            body: Array(send.envelope)))
    }

    /// The TTL class a request asks for (DEFAULT: the relay's default), before the maximum
    /// lowers it; nil for one this relay does not know.
    func ttlClass(_ wire: WireTTLClass) -> TTLClass? {
        switch wire {
        case .default: settings.defaultTTL
        case .hour: .hour
        case .day: .day
        case .week: .week
        case .month: .month
        case .UNRECOGNIZED: nil
        }
    }

    /// NOT_HOME's message, also sent when a move drops a connection.
    static func notHomeMessage(_ member: MemberName, home: String) -> String {
        "\(member)'s home relay is \(home): connect there"
    }

    static func notAllowed(_ requestID: UInt64) -> WireRelayMessage {
        error(requestID, RelayError(.notAllowed, code: "not-allowed", message: "an admin's key may only fetch and publish the directory"))
    }

    static func accepted(_ requestID: UInt64, id: MessageID, outcome: AcceptOutcome) -> WireRelayMessage {
        switch outcome {
        case .accepted(let expiresAt, let duplicate):
            var accepted = WireAccepted()
            accepted.id = Data(id.bytes)
            accepted.expiresAt = expiresAt
            accepted.duplicate = duplicate
            return message(requestID, .accepted(accepted))
        case .refused(.mailboxFull), .refused(.destinationFull):
            return error(requestID, RelayError(.mailboxFull, code: "mailbox-full", message: "the recipient's mailbox is full; try again later"))
        case .refused(.idInUse), .refused(.alreadyDone):
            return error(requestID, RelayError(.idInUse, code: "id-in-use", message: "this message id is in use by another message"))
        case .refused(.storageFull):
            return error(requestID, RelayError(.storageFull, code: "storage-full", message: "the relay's storage is full; it accepts nothing new for now"))
        }
    }

    static func deliver(_ envelope: StoredEnvelope) -> WireRelayMessage {
        var deliver = WireDeliver()
        deliver.id = Data(envelope.id.bytes)
        deliver.precedence = WirePrecedence(rawValue: envelope.precedence.rawValue) ?? .routine
        deliver.arrivedAt = envelope.arrivedAt
        deliver.expiresAt = envelope.expiresAt
        deliver.envelope = Data(envelope.body)
        // The class the relay applied (its maximum may have shortened the sender's).
        let applied = envelope.expiresAt &- envelope.arrivedAt
        deliver.ttl = TTLClass.allCases.last { $0.seconds <= applied }.map { WireTTLClass(rawValue: $0.rawValue + 1) ?? .hour } ?? .hour
        deliver.requestedTtl = WireTTLClass(rawValue: Int(envelope.requestedTTL)) ?? .default
        return message(0, .deliver(deliver))
    }

    static let mailboxIdle = message(0, .mailboxIdle(WireMailboxIdle()))

    /// Signed statuses: pending, expired undelivered, undeliverable with its reason, or
    /// unknown (never accepted, or no longer held: delivery itself is confirmed end to end,
    /// not by the relay).
    static func status(
        _ requestID: UInt64, ids: [MessageID], states: [MessageID: RememberedMessage], nonce: [UInt8], keys: RelayKeys
    ) -> WireRelayMessage {
        var status = WireStatus()
        for id in ids {
            var entry = WireMessageStatus()
            entry.id = Data(id.bytes)
            let remembered = states[id]
            switch remembered?.state {
            case .pending?: entry.state = .pending
            case .expiredUndelivered?: entry.state = .expiredUndelivered
            case .undeliverable?:
                entry.state = .undeliverable
                // The store keeps a reason for every undeliverable id (its migration gave
                // the older ones theirs).
                let reason = remembered?.reason ?? .recipientRevoked
                entry.reason = WireMessageStatus.UndeliverableReason(rawValue: reason.rawValue) ?? .recipientRevoked
            case .forwarded?:
                // Custody passed to the recipient's relay: the client asks there next.
                entry.state = .forwarded
                entry.forwardedTo = remembered?.forwardedTo ?? ""
            case .delivered?, nil: entry.state = .unknown
            }
            entry.time = entry.state == .unknown ? 0 : remembered?.since ?? 0
            let statement = MessageStatusStatement.bytes(relayKey: keys.noise.publicKey, status: entry, nonce: nonce)
            entry.signature = Data(keys.signing.signature(for: statement, purpose: MessageStatusStatement.purpose).bytes)
            status.statuses.append(entry)
        }
        return message(requestID, .status(status))
    }

    /// Entries from `fetch.since`, bounded; a revoked device sees only the first `upTo`
    /// (through its revocation) and no checkpoint (which covers a later head).
    private func entries(_ fetch: WireDirectoryFetch, _ directory: RelayDirectory.Snapshot, upTo visible: Int? = nil) -> WireDirectoryEntries {
        Self.entries(fetch, directory, upTo: visible, maximumEntriesPerFetch: maximumEntriesPerFetch)
    }

    static func entries(
        _ fetch: WireDirectoryFetch, _ directory: RelayDirectory.Snapshot, upTo visible: Int? = nil, maximumEntriesPerFetch: Int
    ) -> WireDirectoryEntries {
        let count = min(visible ?? directory.count, directory.count)
        var answer = WireDirectoryEntries()
        answer.since = fetch.since
        answer.directoryCount = UInt64(count)
        if visible == nil {
            answer.checkpoint = directory.checkpoint.map { Data($0.encoded()) } ?? Data()
        }
        guard fetch.since < UInt64(count) else { return answer }
        let limit = fetch.limit == 0 ? maximumEntriesPerFetch : min(Int(fetch.limit), maximumEntriesPerFetch)
        var bytes = 0
        for entry in directory.encodedEntries[Int(fetch.since)..<count].prefix(limit) {
            if bytes + entry.count > Self.maximumFetchBytes && !answer.entries.isEmpty { break }
            bytes += entry.count
            answer.entries.append(Data(entry))
        }
        return answer
    }

    static func published(_ requestID: UInt64, _ result: RelayDirectory.Published) -> WireRelayMessage {
        var published = WireDirectoryPublished()
        published.directoryCount = UInt64(result.count)
        published.directoryHead = Data(result.head.bytes)
        return message(requestID, .directoryPublished(published))
    }

    static func message(_ requestID: UInt64, _ body: WireRelayMessage.OneOf_Body) -> WireRelayMessage {
        var message = WireRelayMessage()
        message.requestID = requestID
        message.body = body
        return message
    }

    static func error(_ requestID: UInt64, _ error: RelayError) -> WireRelayMessage {
        var wire = WireError()
        wire.code = WireErrorCode(rawValue: error.protocolCode.rawValue) ?? .internal
        wire.message = error.message
        return message(requestID, .error(wire))
    }

    static func encode(_ message: WireRelayMessage) -> [UInt8] { WireCodec.encode(message) }
}
