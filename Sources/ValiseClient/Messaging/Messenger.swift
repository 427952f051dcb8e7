import Foundation
import ValiseCrypto
public import ValiseDirectory
import ValiseSession
public import ValiseStore

/// The device's end-to-end messaging, between the relay connection and the local store:
/// writing messages to the outbox, encrypting them once, and reading what arrives. It does
/// no network I/O itself (MessageSync drives it over a relay connection), so every rule
/// here is tested without a relay.
public final class Messenger {
    public let store: LocalStore
    public let identity: DeviceIdentity
    public let directory: PinnedOrganisation.Loaded
    /// The delay before a delivery receipt is sent, in seconds (random in this range), so
    /// that its timing does not link the sender and the recipient.
    public let receiptDelay: ClosedRange<UInt64>
    /// Where proof of a directory fork is kept (HOME/fork-evidence).
    let forkEvidencePath: String

    /// How long an envelope key fetched with a bundle is used before it is fetched again
    /// (devices rotate theirs weekly and keep the old ones for the longest TTL).
    public static let envelopeKeyRefresh: UInt64 = 7 * 86_400
    /// A circular's id: it groups the outbox items of one circular (never sent anywhere).
    public static let circularIDByteCount = 16
    public static let defaultReceiptDelay: ClosedRange<UInt64> = 2...30

    public init(home: ValiseHome, identity: DeviceIdentity, directory: PinnedOrganisation.Loaded, receiptDelay: ClosedRange<UInt64> = Messenger.defaultReceiptDelay) throws(ClientError) {
        precondition(!identity.storeKeyIsNew, "the keystore must be rewritten with its new store key first")
        do {
            store = try LocalStore(path: home.messageStorePath, key: identity.storeKey)
        } catch {
            throw ClientError(error)
        }
        self.identity = identity
        self.directory = directory
        self.receiptDelay = receiptDelay
        forkEvidencePath = home.forkEvidencePath
    }

    /// Closes the message store.
    public func close() { store.close() }

    var state: DirectoryState { directory.state }
    var head: SealedEnvelope.DirectoryHead {
        SealedEnvelope.DirectoryHead(sequence: state.headSequence, hash: state.headHash.bytes)
    }

    func storeOperation<T>(_ what: String, write: Bool = true, _ body: (LocalStore.Transaction) throws -> T) throws(ClientError) -> T {
        do {
            return write ? try store.write(what, body) : try store.read(what, body)
        } catch {
            throw ClientError(error)
        }
    }

    /// One write transaction whose own errors (a refusal, a ClientError) pass through as
    /// they are, rolling everything back; store failures become ClientErrors.
    func transaction<T>(_ what: String, _ body: (LocalStore.Transaction) throws -> T) throws -> T {
        var passed: (any Error)?
        do {
            return try store.write(what) { tx in
                do {
                    return try body(tx)
                } catch {
                    if !LocalStore.isStoreFailure(error) { passed = error }
                    throw error
                }
            }
        } catch {
            if let passed { throw passed }
            throw ClientError(error)
        }
    }

    // MARK: Own status

    /// Whether the directory says this device's member was revoked, and at which entry.
    public var ownRevocation: (sequence: UInt64, reason: String)? {
        if let revoked = state.revokedKeys[identity.identityKey.publicKey] { return (revoked.sequence, revoked.reason) }
        if let member = state.members[identity.memberName], case .revoked(let reason, let sequence) = member.status,
           member.identityKey == identity.identityKey.publicKey {
            return (sequence, reason)
        }
        return nil
    }

    /// Deletes every session and prekey secret from the store and checkpoints, so nothing
    /// of them is left in the log or free pages (the caller also wipes the keystore).
    public func wipeKeys() throws(ClientError) {
        try storeOperation("wipe keys") { try $0.deleteAllKeys() }
        guard store.checkpoint() else {
            throw ClientError.failure("wipe-incomplete", "the keys were deleted from \(store.path), but its log could not be emptied (another valise process is reading it); close the others and run the command again")
        }
    }

    // MARK: Writing messages

    /// A message written to the outbox, one per recipient.
    public struct Composed: Sendable {
        public let id: [UInt8]
        public let to: MemberName
        /// Set when the recipient's keys are not the ones this device last used for them.
        public let keysChanged: KeyChange?
        /// Whether it waits in the outbox for a fresh checkpoint (`waitsForCheckpoint`).
        public let waitsForCheckpoint: Bool
        /// The circular it is part of (its 16-byte id), if any.
        public var circular: [UInt8]? = nil
    }

    /// A correspondent's keys changed (an administrator rotated them): shown plainly, with
    /// the new safety number to compare.
    public struct KeyChange: Sendable {
        public let member: MemberName
        public let fingerprint: String
        public var warning: String {
            "\(member)'s keys have changed (an administrator rotated them). Their new fingerprint is \(fingerprint); compare it with them by phone before sending anything sensitive (valise verify \(member))."
        }
    }

    /// Checks the recipients against the directory and writes the message to the outbox
    /// (one item per recipient), so it survives until the relay has it. Refuses revoked and
    /// unknown members, and ordinary precedence past the directory's hard freshness bound in
    /// an organisation of one relay, before anything is written (with several relays, such
    /// a message to a member homed elsewhere is written and waits: `waitsForCheckpoint`).
    /// With `circular` (the selector text, as `RecipientSelector` resolved `recipients`
    /// from it), each recipient's message carries it and the items share a circular id.
    public func compose(
        _ text: String, to recipients: [MemberName], circular: String? = nil, precedence: Precedence, ttl: TTLClass, now: UInt64,
        attachments: [OutgoingAttachment] = []
    ) throws(ClientError) -> [Composed] {
        guard !text.isEmpty || !attachments.isEmpty else { throw .usage("empty-message", "the message is empty") }
        guard text.utf8.count <= MessageContent.maximumTextByteCount else {
            throw .usage("message-too-long", "the message is \(text.utf8.count) bytes; at most \(MessageContent.maximumTextByteCount) fit in one envelope")
        }
        guard !recipients.isEmpty else { throw .usage("no-recipient", "name at least one recipient with --to") }
        guard Set(recipients).count == recipients.count else { throw .usage("repeated-recipient", "a recipient is named twice") }
        var members: [Member] = []
        for name in recipients {
            guard name != identity.memberName else { throw .usage("self-recipient", "you cannot send a message to yourself") }
            guard let member = state.members[name] else {
                throw ClientError(kind: .usage, code: "unknown-recipient", message: "no member is called \(name) in the directory (entry \(state.headSequence)); nothing was sent")
            }
            if case .revoked(let reason, let sequence) = member.status {
                throw ClientError(kind: .usage, code: "revoked-recipient", message: "\(name) was revoked by the organisation (entry \(sequence): \(reason)); nothing was sent")
            }
            members.append(member)
        }
        let freshness = DirectoryFreshness(directory, now: now)
        if freshness.refusesComposing && precedence != .flash {
            throw ClientError(kind: .verification, code: "directory-stale", message: "\(freshness.description); ordinary messages are refused until 'valise sync' brings a fresh checkpoint (FLASH still goes)")
        }
        if let circular, circular.isEmpty || circular.utf8.count > MessageContent.Message.maximumSelectorByteCount {
            throw .usage("selector-too-long", "a circular's selector is 1 to \(MessageContent.Message.maximumSelectorByteCount) bytes; nothing was sent")
        }
        let circularID = circular.map { _ in Random.bytes(count: Self.circularIDByteCount) }
        return try storeOperation("write the message to the outbox") { tx in
            var composed: [Composed] = []
            try recordUploads(attachments, for: members, ttl: ttl, now: now, tx: tx)
            for member in members {
                let id = Random.bytes(count: SealedEnvelope.idByteCount)
                var record = OutboxRecord(to: member.name.value, text: text)
                record.circular = circularID.map(Hex.encode)
                record.selector = circular
                let item = OutboxItem(
                    id: id, kind: .message, precedence: UInt8(precedence.rawValue), ttl: UInt8(ttl.rawValue + 1), createdAt: now, notBefore: now,
                    data: try JSONEncoder().encode(record).bytes)
                try tx.addOutbox(item)
                for (position, attachment) in attachments.enumerated() {
                    try tx.addUploadWait(messageID: id, position: position, blobID: attachment.reference.blobID)
                }
                var change: KeyChange?
                if let known = try tx.correspondentRecord(member.name.value), known.identityKey != member.identityKey {
                    change = KeyChange(member: member.name, fingerprint: member.fingerprint.description)
                }
                composed.append(Composed(
                    id: id, to: member.name, keysChanged: change,
                    waitsForCheckpoint: precedence != .flash && freshness.waits(from: identity.memberName, to: member.name, in: state),
                    circular: circularID))
            }
            return composed
        }
    }

    // MARK: Encrypting

    /// What encrypting the outbox did, for the command to say.
    public enum SealNotice: Sendable {
        case keysChanged(KeyChange)
        case recipientRevoked(MemberName)
        case waitingForKeys(MemberName, String)
    }

    /// Whether an outbox item waits for a fresh checkpoint instead of going now: an
    /// ordinary message (not FLASH, not a receipt) past the hard freshness bound, in an
    /// organisation of several relays, to a member not homed at this device's relay.
    public func waitsForCheckpoint(_ item: OutboxItem, to name: MemberName, now: UInt64) -> Bool {
        guard item.kind == .message, item.precedence != UInt8(Precedence.flash.rawValue) else { return false }
        return DirectoryFreshness(directory, now: now).waits(from: identity.memberName, to: name, in: state)
    }

    /// Items waiting to be encrypted now, and what each recipient's keys need first: a
    /// bundle to start a session, or only a fresh envelope key for the session there is.
    /// Items that wait for a fresh checkpoint are left out.
    public func unsealed(now: UInt64) throws(ClientError) -> [(item: OutboxItem, to: MemberName, needs: KeysNeeded)] {
        try storeOperation("read the outbox", write: false) { tx in
            try tx.outbox([.unsealed]).filter { $0.notBefore <= now }.compactMap { item in
                // A message with files goes once the relay has every blob it refers to.
                if item.kind == .message, try tx.waitsForUpload(messageID: item.id) { return nil }
                let record = try item.record()
                guard let name = try? MemberName(record.to), !waitsForCheckpoint(item, to: name, now: now) else { return nil }
                let known = try tx.correspondentRecord(record.to)
                let current = state.members[name]?.identityKey
                let ownKey = identity.identityKey.publicKey
                let needs: KeysNeeded
                if known?.session == nil || known?.identityKey != current || known?.session?.involves(ownKey) == false {
                    needs = .bundle
                } else if known?.envelopeKey == nil || now >= (known?.envelopeKeyFetchedAt ?? 0) &+ Self.envelopeKeyRefresh {
                    // A reply in a session the other side started, or a week since the key
                    // was fetched: no one-time prekey is spent for it.
                    needs = .envelopeKey
                } else {
                    needs = .none
                }
                return (item, name, needs)
            }
        }
    }

    /// Encrypts one outbox item, once: the sealed envelope and the advanced session are
    /// committed in one transaction, and from then on only those bytes are sent.
    /// `bundle` is needed when `unsealed` said so.
    @discardableResult
    public func seal(_ item: OutboxItem, to name: MemberName, bundle: Bundle?, now: UInt64) throws(ClientError) -> [SealNotice] {
        guard let member = state.members[name], member.isActive else {
            try storeOperation("update the outbox") { try $0.setOutboxState(id: item.id, .failed, now: now, reason: .recipientRevoked) }
            return [.recipientRevoked(name)]
        }
        do {
            return try sealing(item, to: name, member: member, bundle: bundle, now: now)
        } catch let error as ClientError {
            throw error
        } catch let error as SessionError {
            throw ClientError(kind: .verification, code: error.code, message: "cannot encrypt for \(name): \(error.message); the message stays in the outbox")
        } catch {
            throw ClientError.failure("message-store", "cannot encrypt a message: \(ClientError.words(for: error))")
        }
    }

    private func sealing(_ item: OutboxItem, to name: MemberName, member: Member, bundle: Bundle?, now: UInt64) throws -> [SealNotice] {
        try transaction("encrypt a message") { tx -> [SealNotice] in
            // Another process may have sealed it since it was read: never advance the
            // session for an item that will not be sent.
            guard try tx.outboxItem(id: item.id)?.state == .unsealed else { return [] }
            let record = try item.record()
            var notices: [SealNotice] = []
            var known = try tx.correspondentRecord(name.value)
            if let previous = known, previous.identityKey != member.identityKey {
                notices.append(.keysChanged(KeyChange(member: name, fingerprint: member.fingerprint.description)))
                known = nil
            }
            // After this device's own rotation, its sessions were agreed with its old key: the
            // peer would refuse to trust them with the new one, so new sessions start.
            if let session = known?.session, !session.involves(identity.identityKey.publicKey) {
                known?.retireCurrentSession()
            }
            if let bundle, bundle.identityKey != member.identityKey {
                throw ClientError(kind: .verification, code: "bundle-identity", message: "the prekey bundle for \(name) is not for the identity key the directory lists for them")
            }
            var correspondent: Correspondent
            if let bundle {
                if var existing = known, existing.session != nil {
                    existing.envelopeKey = bundle.envelopeKey
                    existing.envelopeKeyFetchedAt = now
                    correspondent = existing
                } else {
                    guard let pqxdh = bundle.pqxdh else {
                        throw ClientError.failure("no-bundle", "a prekey bundle for \(name) is needed to start a session, not only their envelope key")
                    }
                    let session = try Session.initiate(identity: identity.identityKey, bundle: pqxdh)
                    correspondent = Correspondent(name: name.value, identityKey: member.identityKey, envelopeKey: bundle.envelopeKey, envelopeKeyFetchedAt: now, session: session)
                }
            } else if let existing = known, existing.session != nil {
                correspondent = existing
            } else {
                throw ClientError.failure("no-bundle", "a prekey bundle for \(name) is needed to start a session")
            }
            let content: MessageContent
            if let ids = record.receiptFor {
                content = .receipt(ids.compactMap { Hex.decode($0) })
            } else {
                let attachments = try attachmentReferences(item, tx: tx)
                content = MessageContent.make(text: record.text ?? "", circular: record.selector, attachments: attachments)
            }
            let message = try correspondent.session!.encrypt(content.encoded)
            let envelope = SealedEnvelope(
                id: item.id, recipient: member.identityKey, precedence: item.precedence, ttlClass: item.ttl, sender: identity.identityKey.publicKey,
                senderHead: head, senderCheckpoint: directory.bundle.checkpoint?.encoded(), timestamp: now, sessionMessage: message)
            guard let envelopeKey = correspondent.envelopeKey else {
                throw ClientError.failure("no-envelope-key", "\(name)'s envelope key is needed first; the message stays in the outbox")
            }
            let sealed = try envelope.sealed(to: envelopeKey, mailbox: name.value)
            try tx.setCorrespondent(name.value, correspondent.stored)
            try tx.sealOutbox(id: item.id, envelope: sealed, now: now)
            try tx.finishUploadWaits(messageID: item.id)
            return notices
        }
    }

    /// Envelopes ready for the relay (encrypted, not yet accepted), most urgent first; but
    /// those that wait for a fresh checkpoint.
    public func readyToSend(now: UInt64) throws(ClientError) -> [(item: OutboxItem, to: String)] {
        try storeOperation("read the outbox", write: false) { tx in
            try tx.outbox([.sealed]).compactMap { item in
                let to = try item.record().to
                if let name = try? MemberName(to), waitsForCheckpoint(item, to: name, now: now) { return nil }
                return (item, to)
            }
        }
    }

    /// How many messages wait in the outbox for a fresh checkpoint.
    public func waitingForCheckpoint(now: UInt64) throws(ClientError) -> Int {
        try storeOperation("read the outbox", write: false) { tx in
            try tx.outbox([.unsealed, .sealed], kind: .message).filter { item in
                guard let name = try? MemberName(item.record().to) else { return false }
                return waitsForCheckpoint(item, to: name, now: now)
            }.count
        }
    }

    /// The relay has it durably: a message waits for its receipt; a receipt is done.
    public func accepted(_ item: OutboxItem, expiresAt: UInt64, now: UInt64) throws(ClientError) {
        try storeOperation("record an acceptance") { tx in
            if item.kind == .receipt {
                try tx.deleteOutbox(id: item.id)
            } else if try tx.outboxItem(id: item.id)?.state == .sealed {
                // A receipt may already have said delivered: never step back.
                try tx.setOutboxState(id: item.id, .accepted, now: now, expiresAt: expiresAt)
            }
        }
    }

    /// Unread messages, and messages (not receipts) the relay does not have yet.
    public func counts() throws(ClientError) -> (unread: Int, outboxWaiting: Int) {
        try storeOperation("read the message store", write: false) { tx in
            (try tx.unreadCount(), try tx.outbox([.unsealed, .sealed], kind: .message).count)
        }
    }

    /// The relay will never take it (the recipient is gone).
    public func undeliverable(_ item: OutboxItem, now: UInt64) throws(ClientError) {
        try storeOperation("update the outbox") { tx in try tx.setOutboxState(id: item.id, .failed, now: now) }
    }

    /// Records what the relay's checked, signed status says of an accepted (or forwarded)
    /// message: expired undelivered, undeliverable and why, or forwarded and to which relay.
    /// Never steps back from delivered (a receipt is the recipient's own word). Returns
    /// whether the item changed.
    @discardableResult
    public func record(_ status: RelayMessageStatus, id: [UInt8], now: UInt64) throws(ClientError) -> Bool {
        try storeOperation("update the outbox") { tx in
            guard let item = try tx.outboxItem(id: id), item.kind == .message, item.state == .accepted || item.state == .forwarded else {
                return false
            }
            switch status {
            case .expiredUndelivered:
                try tx.setOutboxState(id: id, .expired, now: now)
            case .undeliverable(let reason, _):
                try tx.setOutboxState(id: id, .failed, now: now, reason: reason)
            case .forwarded(let relay, _):
                guard item.state != .forwarded || item.forwardedTo != relay else { return false }
                try tx.setOutboxState(id: id, .forwarded, now: now, forwardedTo: relay)
            case .pending, .unknown:
                return false
            }
            return true
        }
    }
}

extension Data {
    var bytes: [UInt8] { [UInt8](self) }
}
