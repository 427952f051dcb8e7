public import ValiseCrypto

/// One end of an end-to-end session with a peer device: the Double Ratchet plus what
/// docs/PROTOCOL.md ("Session messages") adds around it. Until the initiator has read a
/// reply, every message it sends carries the PQXDH initial header, so that whichever of its
/// messages arrives first (delivery follows precedence, not order) can start the session.
///
/// A value, like `DoubleRatchet`: the caller stores it (encrypted) after every change, in
/// the same transaction as the message it encrypted or decrypted.
public struct Session: Sendable {
    /// The session message format's version: 2 since sessions start with PQXDH (version 1
    /// was X3DH alone, and is refused).
    public static let version: UInt8 = 2
    enum Kind: UInt8 {
        case initial = 1
        case ratchet = 2
    }

    /// The peer device's identity key (Ed25519), which the caller checks against the directory.
    public let peerIdentity: SigningPublicKey
    var ratchet: DoubleRatchet
    /// Sent with every message until a reply has been read (initiator only).
    var pendingInitialHeader: PQXDH.InitialHeader?
    /// The header that started this session (both sides), to recognise its repeats.
    let initialHeader: PQXDH.InitialHeader

    /// Whether messages still carry the initial header.
    public var awaitsReply: Bool { pendingInitialHeader != nil }

    /// Whether `identity` is one of the two identity keys the session was agreed between
    /// (its associated data): after a device's own key rotation, its old sessions are not.
    public func involves(_ identity: SigningPublicKey) -> Bool {
        let ad = ratchet.associatedData
        return ad.count == PQXDH.associatedDataByteCount && (Array(ad[0..<32]) == identity.bytes || Array(ad[32..<64]) == identity.bytes)
    }

    /// Starts a session with the device whose bundle this is (the caller has checked the
    /// bundle's identity key against the directory).
    public static func initiate(
        identity: SigningKey, bundle: PQXDH.PrekeyBundle,
        ephemeral: AgreementPrivateKey = AgreementPrivateKey(), ratchetKey: AgreementPrivateKey = AgreementPrivateKey()
    ) throws(SessionError) -> Session {
        let (agreement, header) = try PQXDH.initiate(identity: identity, bundle: bundle, ephemeral: ephemeral)
        let ratchet = try DoubleRatchet(initiatorWith: agreement, remoteRatchetKey: bundle.signedPrekey, ratchetKey: ratchetKey)
        return Session(peerIdentity: bundle.identityKey, ratchet: ratchet, pendingInitialHeader: header, initialHeader: header)
    }

    /// What the responder needs to accept an initial message.
    public struct Prekeys {
        /// The private half of a signed prekey this device holds (current or kept for
        /// late messages), or nil.
        public var signedPrekey: (AgreementPublicKey) -> AgreementPrivateKey?
        /// The private half of an unused one-time prekey, or nil.
        public var oneTimePrekey: (AgreementPublicKey) -> AgreementPrivateKey?
        /// The private half of the KEM prekey with this id (one-time and unused, or a
        /// last-resort one this device holds) and its kind, or nil.
        public var kemPrekey: ([UInt8]) -> (key: MLKEM1024PrivateKey, kind: PQXDH.KEMPrekeyKind)?
        /// Whether a session was already begun with this replay key (see `Accepted`).
        public var seenBefore: ([UInt8]) -> Bool

        public init(
            signedPrekey: @escaping (AgreementPublicKey) -> AgreementPrivateKey?,
            oneTimePrekey: @escaping (AgreementPublicKey) -> AgreementPrivateKey?,
            kemPrekey: @escaping ([UInt8]) -> (key: MLKEM1024PrivateKey, kind: PQXDH.KEMPrekeyKind)?,
            seenBefore: @escaping ([UInt8]) -> Bool
        ) {
            self.signedPrekey = signedPrekey
            self.oneTimePrekey = oneTimePrekey
            self.kemPrekey = kemPrekey
            self.seenBefore = seenBefore
        }
    }

    /// A session started by a peer's initial message.
    public struct Accepted: Sendable {
        public var session: Session
        public let plaintext: [UInt8]
        /// The one-time prekey the session used: the caller deletes its private half in
        /// the same transaction that stores the session.
        public let usedOneTimePrekey: AgreementPublicKey?
        /// The id of the one-time KEM prekey the session used (never a last-resort one): the
        /// caller deletes its private half in the same transaction too.
        public let usedOneTimeKEMPrekey: [UInt8]?
        /// SPK ‖ EK ‖ KEM prekey id: the caller records it for as long as it keeps the signed
        /// prekey, and answers `seenBefore` from that record, so a replayed initial message
        /// cannot start a second session (a one-time prekey of either kind, deleted once
        /// used, does the same).
        public let replayKey: [UInt8]

        /// Whether the session consumed no one-time prekey, so that only a replay record
        /// stops a repeat of its start.
        public var needsReplayRecord: Bool { usedOneTimePrekey == nil && usedOneTimeKEMPrekey == nil }
    }

    /// Whether `message` is an initial message (one that may start a session).
    public static func isInitial(_ message: [UInt8]) -> Bool {
        message.count >= 2 && message[0] == version && message[1] == Kind.initial.rawValue
    }

    /// The PQXDH header an initial message carries, or nil for a ratchet message.
    public static func initialHeader(of message: [UInt8]) throws(SessionError) -> PQXDH.InitialHeader? {
        try parse(message).0
    }

    /// The responder's side: starts a session from an initial message.
    public static func accept(
        _ message: [UInt8], identity: SigningKey, prekeys: Prekeys,
        newRatchetKey: () -> AgreementPrivateKey = { AgreementPrivateKey() }
    ) throws(SessionError) -> Accepted {
        let (header, ratchetMessage) = try parse(message)
        guard let header else { throw SessionError(code: "no-session", message: "the message belongs to a session this device does not have") }
        guard let signedPrekey = prekeys.signedPrekey(header.signedPrekey) else { throw .unknownPrekey }
        let oneTimePrekey: AgreementPrivateKey?
        if let wanted = header.oneTimePrekey {
            guard let found = prekeys.oneTimePrekey(wanted) else { throw .unknownPrekey }
            oneTimePrekey = found
        } else {
            oneTimePrekey = nil
        }
        guard let kemPrekey = prekeys.kemPrekey(header.kemPrekeyID) else { throw .unknownPrekey }
        let replayKey = header.replayKey
        guard !prekeys.seenBefore(replayKey) else { throw .duplicate }
        let agreement = try PQXDH.respond(
            identity: identity, signedPrekey: signedPrekey, oneTimePrekey: oneTimePrekey, kemPrekey: kemPrekey.key, header: header)
        var ratchet = DoubleRatchet(responderWith: agreement, signedPrekey: signedPrekey)
        let plaintext = try ratchet.decrypt(ratchetMessage, newRatchetKey: newRatchetKey)
        let session = Session(peerIdentity: header.identityKey, ratchet: ratchet, pendingInitialHeader: nil, initialHeader: header)
        return Accepted(
            session: session, plaintext: plaintext, usedOneTimePrekey: header.oneTimePrekey,
            usedOneTimeKEMPrekey: kemPrekey.kind == .oneTime ? header.kemPrekeyID : nil, replayKey: replayKey)
    }

    /// `u8 version (2) ‖ u8 kind ‖ [initial header, kind 1] ‖ ratchet message`.
    public mutating func encrypt(_ plaintext: [UInt8]) throws(SessionError) -> [UInt8] {
        let message = try ratchet.encrypt(plaintext)
        let initial = pendingInitialHeader?.encoded
        var writer = ByteWriter(capacity: 2 + (initial?.count ?? 0) + RatchetHeader.byteCount + message.ciphertext.count)
        writer.write(Self.version)
        if let initial {
            writer.write(Kind.initial.rawValue)
            writer.write(initial)
        } else {
            writer.write(Kind.ratchet.rawValue)
        }
        message.write(to: &writer)
        return writer.bytes
    }

    /// Decrypts a message of this session: a ratchet message, or an initial message that
    /// repeats this session's own start (the peer had not yet read a reply). An initial
    /// message with another header is a new session, which the caller starts with `accept`.
    public mutating func decrypt(
        _ message: [UInt8], newRatchetKey: () -> AgreementPrivateKey = { AgreementPrivateKey() }
    ) throws(SessionError) -> [UInt8] {
        let (header, ratchetMessage) = try Self.parse(message)
        if let header, header != initialHeader {
            throw SessionError(code: "new-session", message: "the message starts a new session")
        }
        let plaintext = try ratchet.decrypt(ratchetMessage, newRatchetKey: newRatchetKey)
        // A message from the peer means it has our session: stop sending the header.
        pendingInitialHeader = nil
        return plaintext
    }

    private static func parse(_ message: [UInt8]) throws(SessionError) -> (PQXDH.InitialHeader?, RatchetMessage) {
        guard message.count >= 2 else { throw .malformed("the session message") }
        guard message[0] == version else {
            throw SessionError(
                code: "unsupported-version",
                message: "the session message has version \(message[0]); this program reads only version \(version) (PQXDH), so the sender must update")
        }
        switch Kind(rawValue: message[1]) {
        case .ratchet:
            return (nil, try RatchetMessage(decoding: message[2...]))
        case .initial:
            guard message.count >= 3 else { throw .malformed("the session message") }
            let headerLength = PQXDH.InitialHeader.encodedByteCount(flags: message[2])
            guard message.count >= 2 + headerLength else { throw .malformed("the session message") }
            let header = try PQXDH.InitialHeader(decoding: Array(message[2..<(2 + headerLength)]))
            return (header, try RatchetMessage(decoding: message[(2 + headerLength)...]))
        case nil:
            throw .malformed("the session message")
        }
    }
}
