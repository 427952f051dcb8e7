import Foundation
import GRDB
public import ValiseCrypto

/// The kinds of key the device publishes through the relay.
public enum PrekeyKind: Int, Sendable {
    case signed = 1
    case oneTime = 2
    /// A retired X25519 envelope key (contents version 2): no longer made or used.
    case envelope = 3
    /// ML-KEM-1024 prekeys for PQXDH: the public column holds the key's id (SHA-256 of the
    /// encapsulation key, what an initial header names), the private one the 64-byte seed.
    case kemOneTime = 10
    case kemLastResort = 11
    /// The X-Wing envelope key (contents version 3): the private half is its 32-byte seed.
    case xwingEnvelope = 12
}

public struct StoredPrekey: Sendable {
    public let publicKey: [UInt8]
    public let kind: PrekeyKind
    public let createdAt: UInt64
    public let retiredAt: UInt64?
    public let privateKey: SecretBytes
}

/// Where an outgoing item stands.
public enum OutboxState: Int, Sendable, Codable {
    /// Written, not yet encrypted (no session and no prekey bundle yet).
    case unsealed = 0
    /// Encrypted once; these exact bytes go to the relay until it accepts them.
    case sealed = 1
    /// The relay has it durably.
    case accepted = 2
    /// The recipient's device said it stored it (an end-to-end receipt).
    case delivered = 3
    /// The relay's signed status says it expired before the recipient took it.
    case expired = 4
    /// It can never be delivered: the recipient was revoked before it was encrypted, or the
    /// relay refused it or says so in a signed status (`OutboxItem.undeliverableReason`).
    case failed = 5
    /// The relay's signed status says it handed the message to another relay
    /// (`OutboxItem.forwardedTo`), which holds it for the recipient.
    case forwarded = 6
}

public enum OutboxKind: Int, Sendable {
    case message = 1
    case receipt = 2
}

public struct OutboxItem: Sendable {
    public var sequence: Int64
    public let id: [UInt8]
    public let kind: OutboxKind
    public var state: OutboxState
    public let precedence: UInt8
    public let ttl: UInt8
    public let createdAt: UInt64
    public let notBefore: UInt64
    public var changedAt: UInt64
    public var expiresAt: UInt64?
    /// The item's record (recipient, text…), sealed at rest.
    public let data: [UInt8]
    public var envelope: [UInt8]?
    /// Why it is undeliverable, when known (state `.failed`).
    public var undeliverableReason: UndeliverableReason?
    /// The relay that took custody (state `.forwarded`).
    public var forwardedTo: String?

    public init(id: [UInt8], kind: OutboxKind, precedence: UInt8, ttl: UInt8, createdAt: UInt64, notBefore: UInt64, data: [UInt8]) {
        self.sequence = 0
        self.id = id
        self.kind = kind
        self.state = .unsealed
        self.precedence = precedence
        self.ttl = ttl
        self.createdAt = createdAt
        self.notBefore = notBefore
        self.changedAt = createdAt
        self.data = data
    }
}

public struct InboxItem: Sendable {
    public let sequence: Int64
    public let id: [UInt8]
    public let precedence: UInt8
    public let receivedAt: UInt64
    public let read: Bool
    /// The message's record (sender, times, text), sealed at rest.
    public let data: [UInt8]
}

extension LocalStore {
    /// One transaction's view of the store.
    public struct Transaction {
        let store: LocalStore
        let db: Database

        // MARK: Settings

        public func meta(_ name: String) throws -> [UInt8]? {
            guard let sealed = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE name = ?", arguments: [name]) else { return nil }
            return try store.open(sealed, table: "meta", row: Array(name.utf8))
        }

        public func setMeta(_ name: String, _ value: [UInt8]) throws {
            try db.execute(sql: "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", arguments: [name, store.seal(value, table: "meta", row: Array(name.utf8))])
        }

        // MARK: Correspondents and sessions

        /// The correspondent's sealed record (the caller's format), or nil.
        public func correspondent(_ name: String) throws -> SecretBytes? {
            let handle = store.handle(name)
            guard let sealed = try Data.fetchOne(db, sql: "SELECT data FROM correspondent WHERE handle = ?", arguments: [Data(handle)]) else { return nil }
            return try store.openSecret(sealed, table: "correspondent", row: handle)
        }

        public func setCorrespondent(_ name: String, _ record: SecretBytes) throws {
            let handle = store.handle(name)
            try db.execute(sql: "INSERT OR REPLACE INTO correspondent (handle, data) VALUES (?, ?)", arguments: [Data(handle), store.seal(record, table: "correspondent", row: handle)])
        }

        public func deleteCorrespondent(_ name: String) throws {
            try db.execute(sql: "DELETE FROM correspondent WHERE handle = ?", arguments: [Data(store.handle(name))])
        }

        // MARK: Prekeys

        public func addPrekey(_ publicKey: [UInt8], kind: PrekeyKind, privateKey: SecretBytes, now: UInt64) throws {
            try db.execute(
                sql: "INSERT INTO prekey (public, kind, created_at, private) VALUES (?, ?, ?, ?)",
                arguments: [Data(publicKey), kind.rawValue, Int64(clamping: now), store.seal(privateKey, table: "prekey", row: publicKey)])
        }

        public func prekey(_ publicKey: [UInt8], kind: PrekeyKind) throws -> StoredPrekey? {
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM prekey WHERE public = ? AND kind = ?", arguments: [Data(publicKey), kind.rawValue]) else { return nil }
            return try prekey(row)
        }

        /// Prekeys of one kind, newest first.
        public func prekeys(_ kind: PrekeyKind) throws -> [StoredPrekey] {
            try Row.fetchAll(db, sql: "SELECT * FROM prekey WHERE kind = ? ORDER BY created_at DESC", arguments: [kind.rawValue]).map { row in try prekey(row) }
        }

        public func prekeyCount(_ kind: PrekeyKind) throws -> Int {
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM prekey WHERE kind = ?", arguments: [kind.rawValue]) ?? 0
        }

        private func prekey(_ row: Row) throws -> StoredPrekey {
            let publicKey = [UInt8](try row.value("public", as: Data.self))
            return StoredPrekey(
                publicKey: publicKey, kind: PrekeyKind(rawValue: try row.value("kind")) ?? .oneTime, createdAt: try row.unsigned("created_at", as: UInt64.self),
                retiredAt: try row.unsignedIfPresent("retired_at", as: UInt64.self), privateKey: try store.openSecret(try row.value("private"), table: "prekey", row: publicKey))
        }

        public func retirePrekey(_ publicKey: [UInt8], now: UInt64) throws {
            try db.execute(sql: "UPDATE prekey SET retired_at = ? WHERE public = ? AND retired_at IS NULL", arguments: [Int64(clamping: now), Data(publicKey)])
        }

        /// Deletes a prekey's private half (and, for a signed prekey, its replay records).
        public func deletePrekey(_ publicKey: [UInt8]) throws {
            try db.execute(sql: "DELETE FROM prekey WHERE public = ?", arguments: [Data(publicKey)])
            try db.execute(sql: "DELETE FROM replay WHERE signed_prekey = ?", arguments: [Data(publicKey)])
        }

        /// Deletes every prekey and session (a device that saw its own revocation).
        public func deleteAllKeys() throws {
            try db.execute(sql: "DELETE FROM prekey; DELETE FROM replay; DELETE FROM correspondent; DELETE FROM meta WHERE name <> 'key-check'")
        }

        // MARK: Replay records

        public func hasReplay(_ key: [UInt8]) throws -> Bool {
            try Int.fetchOne(db, sql: "SELECT 1 FROM replay WHERE key = ?", arguments: [Data(store.handle(Hex.encode(key)))]) != nil
        }

        public func addReplay(_ key: [UInt8], signedPrekey: [UInt8]) throws {
            try db.execute(sql: "INSERT OR IGNORE INTO replay (key, signed_prekey) VALUES (?, ?)", arguments: [Data(store.handle(Hex.encode(key))), Data(signedPrekey)])
        }

        // MARK: Outbox

        @discardableResult
        public func addOutbox(_ item: OutboxItem) throws -> Int64 {
            try db.execute(
                sql: """
                    INSERT INTO outbox (id, kind, state, precedence, ttl, created_at, not_before, changed_at, data)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    Data(item.id), item.kind.rawValue, item.state.rawValue, Int(item.precedence), Int(item.ttl), Int64(clamping: item.createdAt),
                    Int64(clamping: item.notBefore), Int64(clamping: item.createdAt), store.seal(item.data, table: "outbox", row: item.id),
                ])
            return db.lastInsertedRowID
        }

        /// Outbox items in these states, highest precedence first, then oldest.
        public func outbox(_ states: [OutboxState], kind: OutboxKind? = nil) throws -> [OutboxItem] {
            let list = states.map { String($0.rawValue) }.joined(separator: ",")
            let kindFilter = kind.map { " AND kind = \($0.rawValue)" } ?? ""
            return try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE state IN (\(list))\(kindFilter) ORDER BY precedence DESC, sequence").map { row in try outboxItem(row) }
        }

        /// Every message (not receipt) in the order written.
        public func sentMessages() throws -> [OutboxItem] {
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE kind = 1 ORDER BY sequence").map { row in try outboxItem(row) }
        }

        public func outboxItem(id: [UInt8]) throws -> OutboxItem? {
            try Row.fetchOne(db, sql: "SELECT * FROM outbox WHERE id = ?", arguments: [Data(id)]).map { row in try outboxItem(row) }
        }

        private func outboxItem(_ row: Row) throws -> OutboxItem {
            let id = [UInt8](try row.value("id", as: Data.self))
            var item = OutboxItem(
                id: id, kind: OutboxKind(rawValue: try row.value("kind")) ?? .message, precedence: UInt8(clamping: try row.value("precedence", as: Int.self)),
                ttl: UInt8(clamping: try row.value("ttl", as: Int.self)), createdAt: try row.unsigned("created_at", as: UInt64.self), notBefore: try row.unsigned("not_before", as: UInt64.self),
                data: try store.open(try row.value("data"), table: "outbox", row: id))
            item.sequence = try row.value("sequence")
            item.state = OutboxState(rawValue: try row.value("state")) ?? .failed
            item.changedAt = try row.unsigned("changed_at", as: UInt64.self)
            item.expiresAt = try row.unsignedIfPresent("expires_at", as: UInt64.self)
            item.envelope = (try row.value("envelope", as: Data?.self)).map { [UInt8]($0) }
            item.undeliverableReason = (try row.value("reason", as: Int?.self)).flatMap(UndeliverableReason.init(rawValue:))
            if let sealed = try row.value("forwarded_to", as: Data?.self) {
                item.forwardedTo = String(decoding: try store.open(sealed, table: "outbox-forwarded", row: id), as: UTF8.self)
            }
            return item
        }

        /// Records the sealed envelope (the caller commits the advanced session in the same
        /// transaction).
        public func sealOutbox(id: [UInt8], envelope: [UInt8], now: UInt64) throws {
            try db.execute(
                sql: "UPDATE outbox SET state = ?, envelope = ?, changed_at = ? WHERE id = ? AND state = ?",
                arguments: [OutboxState.sealed.rawValue, Data(envelope), Int64(clamping: now), Data(id), OutboxState.unsealed.rawValue])
        }

        /// Moves an item on. Once accepted, the envelope is dropped (it is never sent again).
        /// `reason` (for `.failed`) and `forwardedTo` (for `.forwarded`) replace what the item
        /// said before; the relay's name is sealed, as it tells where the recipient lives.
        public func setOutboxState(
            id: [UInt8], _ state: OutboxState, now: UInt64, expiresAt: UInt64? = nil, reason: UndeliverableReason? = nil, forwardedTo: String? = nil
        ) throws {
            let dropEnvelope = state != .sealed && state != .unsealed
            let relay = forwardedTo.map { store.seal(Array($0.utf8), table: "outbox-forwarded", row: id) }
            try db.execute(
                sql: """
                    UPDATE outbox SET state = ?, changed_at = ?, expires_at = COALESCE(?, expires_at), reason = ?, forwarded_to = ?\
                    \(dropEnvelope ? ", envelope = NULL" : "") WHERE id = ?
                    """,
                arguments: [state.rawValue, Int64(clamping: now), expiresAt.map { Int64(clamping: $0) }, reason?.rawValue, relay, Data(id)])
        }

        public func deleteOutbox(id: [UInt8]) throws {
            try db.execute(sql: "DELETE FROM outbox WHERE id = ?", arguments: [Data(id)])
        }

        // MARK: Inbox

        /// Whether this envelope id was handled before (stored, a receipt, or refused).
        public func hasSeen(_ id: [UInt8]) throws -> Bool {
            try Int.fetchOne(db, sql: "SELECT 1 FROM seen WHERE id = ?", arguments: [Data(id)]) != nil
        }

        /// Records an envelope id as handled; `refused` says why it was not shown.
        public func markSeen(_ id: [UInt8], now: UInt64, refused: String? = nil) throws {
            try db.execute(sql: "INSERT OR IGNORE INTO seen (id, at, refused) VALUES (?, ?, ?)", arguments: [Data(id), Int64(clamping: now), refused])
        }

        public func addInbox(id: [UInt8], precedence: UInt8, receivedAt: UInt64, data: [UInt8]) throws {
            try db.execute(
                sql: "INSERT INTO inbox (id, precedence, received_at, data) VALUES (?, ?, ?, ?)",
                arguments: [Data(id), Int(precedence), Int64(clamping: receivedAt), store.seal(data, table: "inbox", row: id)])
        }

        /// The inbox in the order the device received it.
        public func inbox(unreadOnly: Bool = false) throws -> [InboxItem] {
            try Row.fetchAll(db, sql: "SELECT * FROM inbox\(unreadOnly ? " WHERE read = 0" : "") ORDER BY sequence").map { row in try inboxItem(row) }
        }

        public func unreadCount() throws -> Int {
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox WHERE read = 0") ?? 0
        }

        private func inboxItem(_ row: Row) throws -> InboxItem {
            let id = [UInt8](try row.value("id", as: Data.self))
            return InboxItem(
                sequence: try row.value("sequence"), id: id, precedence: UInt8(clamping: try row.value("precedence", as: Int.self)), receivedAt: try row.unsigned("received_at", as: UInt64.self),
                read: (try row.value("read", as: Int.self)) != 0, data: try store.open(try row.value("data"), table: "inbox", row: id))
        }

        public func markRead(id: [UInt8]) throws {
            try db.execute(sql: "UPDATE inbox SET read = 1 WHERE id = ?", arguments: [Data(id)])
        }
    }
}
