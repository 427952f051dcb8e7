import Foundation
import GRDB
public import ValiseCrypto

/// The client's local store: one SQLite file (WAL, `synchronous = FULL`, `secure_delete`
/// on) in the device home. What would tell a thief who wrote to whom and what — message
/// bodies, correspondents' names, session and prekey secrets — is encrypted under a key
/// from the keystore (XChaCha20-Poly1305, a random nonce per value, the table and row bound
/// in as associated data, so a value cannot be moved to another row). Names used as keys
/// are replaced by a keyed BLAKE2b handle. What stays in the clear: ids, times, states,
/// precedence, public prekeys and sealed envelopes (which only their recipient can open).
///
/// Every method is one transaction; `write` groups several (a sealed envelope and the
/// advanced session commit together, or not at all).
public final class LocalStore: Sendable {
    let pool: DatabasePool
    let key: SymmetricKey
    let handleKey: SecretBytes
    public let path: String

    static let fileKind = SQLiteFile.Kind(applicationID: 0x5641_4C43, name: "a Valise message store", program: "valise")

    /// Opens (or creates) the store at `path` with the keystore's store key. A store that
    /// was written under another key is refused as soon as a value fails to open.
    public init(path: String, key: SymmetricKey) throws(StoreError) {
        self.path = path
        self.key = key
        handleKey = SecretBytes(count: 32) { buffer in
            // A separate key for handles, so a handle is never an AEAD input under the same key.
            let derived = (try? BLAKE2b.hash(Array("valise/v1/local/handle".utf8), key: key.rawRepresentation, outputByteCount: 32)) ?? []
            buffer.copyBytes(from: derived)
        }
        try SQLiteFile.prepare(path, kind: Self.fileKind, migrator: Self.migrator, create: true)
        var configuration = Configuration()
        configuration.label = "valise.local"
        configuration.busyMode = .timeout(10)
        // Another valise process (watch and send at once) waits its turn: GRDB begins every
        // pool write with BEGIN IMMEDIATE, so a read-modify-write of a session never races.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try pool.writeWithoutTransaction { db in
                // GRDB leaves a pool in NORMAL; every message is acknowledged only after it is here.
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            try Self.migrator.migrate(pool)
        } catch let error as StoreError {
            throw error
        } catch {
            throw SQLiteFile.storeError(error, doing: "open \(path)")
        }
        try checkKey()
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
                -- One row per correspondent: the keyed handle of the member name, and (sealed)
                -- the name, the identity key last seen and the session, if any.
                CREATE TABLE correspondent (handle BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
                CREATE TABLE prekey (
                    public BLOB PRIMARY KEY,
                    kind INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    retired_at INTEGER,
                    private BLOB NOT NULL
                ) WITHOUT ROWID;
                -- Sessions begun without a one-time prekey: keyed hashes of SPK ‖ EK.
                CREATE TABLE replay (key BLOB PRIMARY KEY, signed_prekey BLOB NOT NULL) WITHOUT ROWID;
                CREATE TABLE outbox (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    id BLOB NOT NULL UNIQUE,
                    kind INTEGER NOT NULL,
                    state INTEGER NOT NULL,
                    precedence INTEGER NOT NULL,
                    ttl INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    not_before INTEGER NOT NULL,
                    changed_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    data BLOB NOT NULL,
                    envelope BLOB
                );
                CREATE TABLE inbox (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    id BLOB NOT NULL UNIQUE,
                    precedence INTEGER NOT NULL,
                    received_at INTEGER NOT NULL,
                    read INTEGER NOT NULL DEFAULT 0,
                    data BLOB NOT NULL
                );
                -- Every envelope id this device has handled (stored, receipt or refused), so a
                -- repeat is acknowledged again and never shown twice.
                CREATE TABLE seen (id BLOB PRIMARY KEY, at INTEGER NOT NULL, refused TEXT) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v2-outbox-outcome") { db in
            // Why a message is undeliverable (`UndeliverableReason`, NULL when not known),
            // and (sealed, table "outbox-forwarded") the relay that took custody of it.
            try db.execute(sql: """
                ALTER TABLE outbox ADD COLUMN reason INTEGER;
                ALTER TABLE outbox ADD COLUMN forwarded_to BLOB;
                """)
        }
        migrator.registerMigration("v3-attachments") { db in
            try db.execute(sql: LocalStore.attachmentTables)
        }
        return migrator
    }

    // MARK: Sealing values

    func seal(_ plaintext: [UInt8], table: String, row: [UInt8]) -> Data {
        let nonce = XChaChaPoly.Nonce.random()
        return Data(nonce.bytes + XChaChaPoly.seal(plaintext, using: key, nonce: nonce, authenticating: Self.ad(table, row)))
    }

    func seal(_ plaintext: SecretBytes, table: String, row: [UInt8]) -> Data {
        let nonce = XChaChaPoly.Nonce.random()
        return Data(nonce.bytes + XChaChaPoly.seal(plaintext, using: key, nonce: nonce, authenticating: Self.ad(table, row)))
    }

    func open(_ sealed: Data, table: String, row: [UInt8]) throws(StoreError) -> [UInt8] {
        let (nonce, ciphertext) = try Self.split(sealed, table: table)
        guard let plaintext = try? XChaChaPoly.open(ciphertext, using: key, nonce: nonce, authenticating: Self.ad(table, row)) else { throw Self.damaged(table) }
        return plaintext
    }

    func openSecret(_ sealed: Data, table: String, row: [UInt8]) throws(StoreError) -> SecretBytes {
        let (nonce, ciphertext) = try Self.split(sealed, table: table)
        guard let plaintext = try? XChaChaPoly.openSecret(ciphertext, using: key, nonce: nonce, authenticating: Self.ad(table, row)) else { throw Self.damaged(table) }
        return plaintext
    }

    private static func split(_ sealed: Data, table: String) throws(StoreError) -> (XChaChaPoly.Nonce, [UInt8]) {
        let bytes = [UInt8](sealed)
        guard bytes.count >= XChaChaPoly.nonceByteCount + XChaChaPoly.tagByteCount,
              let nonce = try? XChaChaPoly.Nonce(bytes: Array(bytes.prefix(XChaChaPoly.nonceByteCount)))
        else { throw damaged(table) }
        return (nonce, Array(bytes.dropFirst(XChaChaPoly.nonceByteCount)))
    }

    static func damaged(_ table: String) -> StoreError {
        StoreError(.corrupt, "a value in the message store (\(table)) does not decrypt: the file is damaged or was written under another device's keys")
    }

    private static func ad(_ table: String, _ row: [UInt8]) -> [UInt8] {
        Array("valise/v1/local/\(table)".utf8) + [0] + row
    }

    /// The keyed handle that stands for a member name in the clear columns.
    public func handle(_ name: String) -> [UInt8] {
        (try? BLAKE2b.hash(Array(name.utf8), key: handleKey, outputByteCount: 16)) ?? []
    }

    /// A known value sealed at creation proves the key is the store's before anything is
    /// written with it.
    private func checkKey() throws(StoreError) {
        let check = try transact(writing: true, "check the message store's key") { db throws -> Bool in
            if let sealed = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'key-check'") {
                _ = try self.open(sealed, table: "meta", row: Array("key-check".utf8))
                return true
            }
            try db.execute(sql: "INSERT INTO meta (name, value) VALUES ('key-check', ?)", arguments: [self.seal(Array("valise".utf8), table: "meta", row: Array("key-check".utf8))])
            return false
        }
        _ = check
    }

    // MARK: Transactions

    /// Runs `body` in one write transaction: all of it commits (durably) or none.
    public func write<T>(_ what: String, _ body: (Transaction) throws -> T) throws(StoreError) -> T {
        try transact(writing: true, what) { db in try body(Transaction(store: self, db: db)) }
    }

    /// Runs `body` on a consistent snapshot, without writing.
    public func read<T>(_ what: String, _ body: (Transaction) throws -> T) throws(StoreError) -> T {
        try transact(writing: false, what) { db in try body(Transaction(store: self, db: db)) }
    }

    private func transact<T>(writing: Bool, _ what: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return writing ? try pool.write(body) : try pool.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw SQLiteFile.storeError(error, doing: what)
        }
    }

    /// Folds the log into the database and truncates it, so that deleted keys do not
    /// survive in the write-ahead log (secure_delete already overwrote their pages).
    /// Returns whether the log was emptied (it is not while another process reads).
    @discardableResult
    public func checkpoint() -> Bool {
        (try? pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }) != nil
    }

    /// Whether an error thrown inside a transaction came from the database (as opposed to
    /// the caller's own reasons for rolling back).
    public static func isStoreFailure(_ error: any Error) -> Bool {
        error is DatabaseError || error is StoreError
    }

    public func close() {
        try? pool.close()
    }
}
