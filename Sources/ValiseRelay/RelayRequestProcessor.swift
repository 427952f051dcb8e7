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
        /// The per-device send rate, told in the Welcome so that clients pace themselves
        /// (limits.sendsPerSecondPerDevice, limits.sendBurstPerDevice; 0: not told).
        var sendsPerSecond: Double = 0
        var sendBurst: Int = 0
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
            welcome.sendsPerSecond = settings.sendsPerSecond
            welcome.sendBurst = UInt32(clamping: settings.sendBurst)
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
}
