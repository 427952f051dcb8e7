import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore

extension Messenger {
    /// An envelope as the relay delivered it.
    public struct Delivered: Sendable {
        public let id: [UInt8]
        public let precedence: UInt8
        /// The TTL class the relay applied.
        public let ttlClass: UInt8
        /// The TTL class the sender asked for (the envelope's labels bind it).
        public let requestedTTLClass: UInt8
        public let envelope: [UInt8]

        public init(id: [UInt8], precedence: UInt8, ttlClass: UInt8, requestedTTLClass: UInt8, envelope: [UInt8]) {
            self.id = id
            self.precedence = precedence
            self.ttlClass = ttlClass
            self.requestedTTLClass = requestedTTLClass
            self.envelope = envelope
        }
    }

    /// What became of a delivered envelope. All but `later` are acknowledged to the relay
    /// (after the local commit): a refused envelope can never become readable, so keeping
    /// it on the relay would only block the mailbox.
    public enum Received: Sendable {
        case message(InboxMessage)
        case receipt(count: Int)
        /// Handled before: acknowledged again, not shown twice.
        case repeated
        case refused(code: String, reason: String)
        /// Not handled yet (this device's directory is behind the sender's): left on the
        /// relay for the next sync.
        case later(String)

        public var acknowledge: Bool {
            if case .later = self { return false }
            return true
        }
    }

    /// Opens, checks and decrypts an envelope, and commits the message (and the advanced
    /// session, the used one-time prekey's deletion, the receipt to send) in one
    /// transaction. Nothing is stored for an envelope that fails a check.
    ///
    /// `directoryCurrent` says the directory was fetched from this relay just now: then an
    /// unknown sender claiming a newer directory is lying (or the relay hides entries) and
    /// is refused; otherwise the envelope waits (`later`) for a fresher directory.
    public func receive(_ delivered: Delivered, now: UInt64, directoryCurrent: Bool = true) throws(ClientError) -> Received {
        let id = delivered.id
        guard id.count == SealedEnvelope.idByteCount else { return .refused(code: "malformed", reason: "the relay delivered an envelope with a malformed id") }
        if try storeOperation("read the message store", write: false, { try $0.hasSeen(id) }) { return .repeated }
        do {
            let outcome = try open(delivered, now: now, directoryCurrent: directoryCurrent)
            return outcome
        } catch let refusal as Refusal {
            try storeOperation("record a refused envelope") { try $0.markSeen(id, now: now, refused: refusal.code) }
            return .refused(code: refusal.code, reason: refusal.reason)
        } catch let later as Later {
            return .later(later.reason)
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError.failure("message-store", "cannot store a message: \(ClientError.words(for: error))")
        }
    }

    struct Refusal: Error {
        let code: String
        let reason: String
    }

    struct Later: Error {
        let reason: String
    }

    private func open(_ delivered: Delivered, now: UInt64, directoryCurrent: Bool) throws -> Received {
        let envelope = try openEnvelope(delivered)
        let (sender, keysChanged) = try checkSender(envelope, directoryCurrent: directoryCurrent)
        let senderName = sender.name.value
        return try transaction("store a message") { tx -> Received in
            // Another process may have handled it since the first look.
            if try tx.hasSeen(envelope.id) { return .repeated }
            var known = try tx.correspondentRecord(senderName)
            let changed = known.map { $0.identityKey != sender.identityKey } ?? false
            if changed { known = nil }
            // A correspondent who wrote first: their envelope key comes with the bundle
            // fetched before the first reply (fetched at 0: due at once).
            var correspondent = known ?? Correspondent(
                name: senderName, identityKey: sender.identityKey, envelopeKey: nil, envelopeKeyFetchedAt: 0, session: nil)
            let plaintext: [UInt8]
            var usedOneTimePrekey: AgreementPublicKey?
            var usedOneTimeKEMPrekey: [UInt8]?
            var replay: (key: [UInt8], signedPrekey: [UInt8])?
            do {
                if let (index, session, decrypted) = Self.decryptInKnownSession(envelope.sessionMessage, correspondent) {
                    plaintext = decrypted
                    correspondent.use(session, from: index)
                } else if Session.isInitial(envelope.sessionMessage) {
                    let accepted = try acceptSession(envelope, tx: tx)
                    plaintext = accepted.plaintext
                    correspondent.start(accepted.session)
                    usedOneTimePrekey = accepted.usedOneTimePrekey
                    usedOneTimeKEMPrekey = accepted.usedOneTimeKEMPrekey
                    if accepted.needsReplayRecord {
                        replay = (accepted.replayKey, Array(accepted.replayKey.prefix(32)))
                    }
                } else {
                    throw correspondent.session == nil
                        ? SessionError(code: "no-session", message: "the message belongs to a session this device does not have")
                        : SessionError.undecryptable
                }
            } catch let error as SessionError {
                throw Refusal(code: error.code, reason: "from \(senderName): \(error.message)")
            }
            let content: MessageContent
            do throws(SessionError) {
                content = try MessageContent(decoding: plaintext)
            } catch {
                throw Refusal(code: error.code, reason: "from \(senderName): \(error.message)")
            }
            // The session proved who wrote this: only now may its head and checkpoint count.
            let note = try directoryNote(envelope, now: now)
            try tx.setCorrespondent(senderName, correspondent.stored)
            if let usedOneTimePrekey { try tx.deletePrekey(usedOneTimePrekey.bytes) }
            if let usedOneTimeKEMPrekey { try tx.deletePrekey(usedOneTimeKEMPrekey) }
            if let replay { try tx.addReplay(replay.key, signedPrekey: replay.signedPrekey) }
            try tx.markSeen(envelope.id, now: now)
            switch content {
            case .text, .message:
                // A kind-3 message keeps its circular's selector; its attachments are
                // shown as its text until the inbox keeps them.
                let text = content.readableText
                var circular: String?
                if case .message(let message) = content { circular = message.circular }
                var record = InboxRecord(
                    from: senderName, sentAt: envelope.timestamp, text: text, keysChanged: (changed || keysChanged) ? true : nil, directoryNote: note,
                    circular: circular)
                let attachments = if case .message(let message) = content { message.attachments } else { [AttachmentReference]() }
                record.attachments = Self.inboxRecords(attachments)
                try recordReceived(attachments, messageID: envelope.id, tx: tx)
                try tx.addInbox(id: envelope.id, precedence: envelope.precedence, receivedAt: now, data: try JSONEncoder().encode(record).bytes)
                let delay = UInt64.random(in: receiptDelay)
                let receipt = OutboxRecord(to: senderName, text: nil, receiptFor: [Hex.encode(envelope.id)])
                try tx.addOutbox(OutboxItem(
                    id: Random.bytes(count: SealedEnvelope.idByteCount), kind: .receipt, precedence: UInt8(Precedence.routine.rawValue),
                    ttl: UInt8(TTLClass.day.rawValue + 1), createdAt: now, notBefore: now &+ delay, data: try JSONEncoder().encode(receipt).bytes))
                return .message(InboxMessage(id: envelope.id, from: senderName, precedence: envelope.precedence, sentAt: envelope.timestamp, receivedAt: now, read: false, text: text,
                                             keysChanged: changed || keysChanged ? KeyChange(member: sender.name, fingerprint: sender.fingerprint.description) : nil,
                                             directoryNote: note, circular: circular, attachmentCount: attachments.count))
            case .receipt(let ids):
                var confirmed = 0
                for messageID in ids {
                    // Only the message's own recipient can confirm it.
                    guard let item = try tx.outboxItem(id: messageID), item.kind == .message, item.state == .accepted || item.state == .expired || item.state == .forwarded,
                          try item.record().to == senderName else { continue }
                    try tx.setOutboxState(id: messageID, .delivered, now: now)
                    confirmed += 1
                }
                return .receipt(count: confirmed)
            }
        }
    }

    /// Tries the current session, then the earlier ones (index 0 is the current): when two
    /// devices started sessions with each other at once, each may be writing in the one
    /// the other replaced. Nothing changes unless a message authenticates.
    private static func decryptInKnownSession(_ message: [UInt8], _ correspondent: Correspondent) -> (Int, Session, [UInt8])? {
        let candidates = (correspondent.session.map { [$0] } ?? []) + correspondent.previousSessions
        for (index, candidate) in candidates.enumerated() {
            var session = candidate
            if let plaintext = try? session.decrypt(message) {
                return (correspondent.session == nil ? index + 1 : index, session, plaintext)
            }
        }
        return nil
    }

    private func acceptSession(_ envelope: SealedEnvelope, tx: LocalStore.Transaction) throws -> Session.Accepted {
        guard let ownIdentity = identities.first(where: { $0.publicKey == envelope.recipient }) else {
            throw Refusal(code: "not-for-this-device", reason: "the envelope is addressed to another device")
        }
        let signed = try tx.prekeys(.signed)
        let oneTime = try tx.prekeys(.oneTime)
        // Read before the agreement, so that a database failure is an error (retried), not
        // a replay verdict (refused and acknowledged: a lost message).
        var replayAnswers: [[UInt8]: Bool] = [:]
        // Only the KEM prekey the header names (the store's public column holds its id); a
        // last-resort one is never deleted on use.
        var kem: (StoredPrekey, PQXDH.KEMPrekeyKind)?
        if let header = try? Session.initialHeader(of: envelope.sessionMessage) {
            replayAnswers[header.replayKey] = try tx.hasReplay(header.replayKey)
            if let oneTime = try tx.prekey(header.kemPrekeyID, kind: .kemOneTime) {
                kem = (oneTime, .oneTime)
            } else if let lastResort = try tx.prekey(header.kemPrekeyID, kind: .kemLastResort) {
                kem = (lastResort, .lastResort)
            }
        }
        let prekeys = Session.Prekeys(
            signedPrekey: { key in signed.first { $0.publicKey == key.bytes }.flatMap { try? AgreementPrivateKey(rawRepresentation: $0.privateKey) } },
            oneTimePrekey: { key in oneTime.first { $0.publicKey == key.bytes }.flatMap { try? AgreementPrivateKey(rawRepresentation: $0.privateKey) } },
            kemPrekey: { id in
                kem.flatMap { stored, kind in stored.publicKey == id ? (try? MLKEM1024PrivateKey(seed: stored.privateKey)).map { ($0, kind) } : nil }
            },
            seenBefore: { key in replayAnswers[key] ?? true })
        let accepted = try Session.accept(envelope.sessionMessage, identity: ownIdentity, prekeys: prekeys)
        guard accepted.session.peerIdentity == envelope.sender else {
            throw Refusal(code: "sender-mismatch", reason: "the envelope names one sender and its session another (forged)")
        }
        return accepted
    }

    /// This device's identity keys: the current one, then those retired by a rotation
    /// (kept to read what was already in flight).
    var identities: [SigningKey] {
        [identity.identityKey] + identity.retired.map(\.keys.identity)
    }

    /// Opens the seal with the envelope keys this device holds (current, then retired).
    private func openEnvelope(_ delivered: Delivered) throws -> SealedEnvelope {
        let keys = try storeOperation("read the envelope keys", write: false) { try $0.prekeys(.xwingEnvelope) }
        var last: SessionError = SessionError(code: "unsealable", message: "this device holds no envelope key yet")
        let labels = SealedEnvelope.Labels(
            mailbox: identity.memberName.value, id: delivered.id, precedence: delivered.precedence, ttlClass: delivered.requestedTTLClass)
        let recipients = identities.map(\.publicKey)
        for key in keys {
            guard let privateKey = try? XWingPrivateKey(seed: key.privateKey) else { continue }
            do {
                return try SealedEnvelope.open(
                    delivered.envelope, with: privateKey, labels: labels, appliedTTLClass: delivered.ttlClass, recipients: recipients)
            } catch {
                last = error
                if error.code != "unsealable" { break }
            }
        }
        throw Refusal(code: last.code, reason: last.message)
    }

    /// The sender must be an active member whose current identity key signed nothing less
    /// than this envelope's session. Its directory head is compared only once the session
    /// has authenticated the message (`directoryNote`): the envelope itself is anonymous.
    private func checkSender(_ envelope: SealedEnvelope, directoryCurrent: Bool) throws -> (Member, Bool) {
        let head = envelope.senderHead
        if let member = state.member(identityKey: envelope.sender) {
            guard member.isActive else {
                throw Refusal(code: "revoked-sender", reason: "from \(member.name), whom the organisation revoked: not shown")
            }
            return (member, false)
        }
        if let revoked = state.revokedKeys[envelope.sender] {
            throw Refusal(code: "revoked-sender", reason: "from \(revoked.member), whose key the organisation revoked (entry \(revoked.sequence)): not shown")
        }
        if let member = state.members.values.first(where: { $0.retiredKeys.contains { $0.identityKey == envelope.sender } }) {
            throw Refusal(code: "retired-sender-key", reason: "from \(member.name), sent with keys an administrator has since replaced: not shown")
        }
        if head.sequence >= UInt64(directory.verifier.count) && !directoryCurrent {
            throw Later(reason: "an envelope's sender is in a newer directory than this device's (entry \(head.sequence)); it stays on the relay until the next sync")
        }
        throw Refusal(code: "unknown-sender", reason: "from a key that is not a member of the directory: not shown")
    }
}

/// A message in the inbox, decrypted for display.
public struct InboxMessage: Sendable {
    public let id: [UInt8]
    public let from: String
    public let precedence: UInt8
    public let sentAt: UInt64
    public let receivedAt: UInt64
    public let read: Bool
    public let text: String
    public let keysChanged: Messenger.KeyChange?
    /// What the sender's directory head says against this device's: a quiet note, or the
    /// DIRECTORY FORK alarm with its evidence.
    public let directoryNote: DirectoryNote?
    /// The selector of the circular it came in ("mission:geneva"), as the sender wrote it
    /// (print it with the same care as the text).
    public var circular: String? = nil
    /// How many files came with it (`Messenger.attachments(of:)` lists them).
    public var attachmentCount = 0

    public var idHex: String { Hex.encode(id) }
    public var precedenceName: String { (Precedence(rawValue: Int(precedence)) ?? .routine).name }
}
