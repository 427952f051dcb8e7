import Foundation
import GRDB
import ValiseCrypto

/// The relay's attachment blobs in an SQLite file of their own (`blobs.sqlite` beside
/// `queue.sqlite`), so that blobs never take the room of envelopes nor count in the
/// envelope store's size. WAL, every commit durable like the envelope store's (`.full`:
/// `synchronous = FULL`). A blob's bytes are rows of at most `rowBytes`, so that neither an
/// upload, a fetch nor the hash check ever holds a whole blob in memory.
///
/// What the file holds of a blob: its id (a public name: the hash of ciphertext), size,
/// committed length, expiry, fetches left, and the relays it still goes to. Never an
/// uploader, a file name, or a link to an envelope.
public final class SQLiteBlobStore: BlobStore {
    let pool: DatabasePool
    public let path: String
    public let durability: Durability

    /// The largest row of blob bytes: the wire's chunk size, so an upload's part is one row.
    public static let rowBytes = 262_144

    /// `PRAGMA application_id` "VALB".
    static let fileKind = SQLiteFile.Kind(applicationID: 0x5641_4C42, name: "a Valise blob store", program: "valised")

    /// Opens the store at `path` (creating it when `create` is set and no file is there);
    /// an existing file must be a Valise blob store this version understands.
    public init(path: String, create: Bool = true, durability: Durability = .full) throws(StoreError) {
        self.path = path
        self.durability = durability
        pool = try SQLiteFile.openPool(path, kind: Self.fileKind, migrator: Self.migrator, create: create, durability: durability, label: "valise.blobs")
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // No column names who uploaded a blob or which envelope refers to it.
            try db.execute(sql: """
                CREATE TABLE blob (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    id BLOB NOT NULL UNIQUE,
                    size INTEGER NOT NULL,
                    committed INTEGER NOT NULL,
                    complete INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    fetches_left INTEGER NOT NULL
                );
                CREATE INDEX blob_expiry ON blob(expires_at);
                -- The bytes, in rows of at most 262,144 bytes starting at `offset`.
                CREATE TABLE blob_chunk (
                    blob INTEGER NOT NULL REFERENCES blob(sequence) ON DELETE CASCADE,
                    offset INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (blob, offset)
                );
                -- Relays the blob still goes to once complete, with the fetches declared there.
                CREATE TABLE blob_forward (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    blob INTEGER NOT NULL REFERENCES blob(sequence) ON DELETE CASCADE,
                    destination TEXT NOT NULL,
                    fetches INTEGER NOT NULL,
                    UNIQUE (blob, destination)
                );
                CREATE INDEX blob_forward_destination ON blob_forward(destination, sequence);
                """)
        }
        return migrator
    }

    /// One write transaction, its errors as StoreError.
    func write<T>(_ what: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try pool.write(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw SQLiteFile.storeError(error, doing: what)
        }
    }

    func read<T>(_ what: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try pool.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw SQLiteFile.storeError(error, doing: what)
        }
    }

    /// A blob's row: its sequence (the key of its bytes and forwards) and its record.
    struct Held {
        let sequence: Int64
        let record: BlobRecord
    }

    static func held(_ db: Database, _ id: BlobID) throws -> Held? {
        guard let row = try Row.fetchOne(
            db, sql: "SELECT sequence, size, committed, complete, expires_at, fetches_left FROM blob WHERE id = ?", arguments: [id.bytes.databaseBlob])
        else { return nil }
        return Held(sequence: try row.value(0), record: BlobRecord(
            id: id, size: try row.unsigned(1, as: UInt64.self), committed: try row.unsigned(2, as: UInt64.self), complete: try row.value(3, as: Bool.self),
            expiresAt: try row.unsigned(4, as: UInt64.self), fetchesLeft: try row.unsigned(5, as: UInt32.self)))
    }

    static func delete(_ db: Database, sequence: Int64) throws {
        // Explicitly rather than by cascade: foreign keys are a per-connection setting.
        try db.execute(sql: "DELETE FROM blob_chunk WHERE blob = ?", arguments: [sequence])
        try db.execute(sql: "DELETE FROM blob_forward WHERE blob = ?", arguments: [sequence])
        try db.execute(sql: "DELETE FROM blob WHERE sequence = ?", arguments: [sequence])
    }

    /// Deletes the blob if no fetch is left here and no forward waits; returns whether it did.
    static func deleteIfDone(_ db: Database, _ held: Held) throws -> Bool {
        guard held.record.fetchesLeft == 0 else { return false }
        let forwards = try Int.fetchOne(db, sql: "SELECT count(*) FROM blob_forward WHERE blob = ?", arguments: [held.sequence]) ?? 0
        guard forwards == 0 else { return false }
        try delete(db, sequence: held.sequence)
        return true
    }

    /// BLAKE2b-256 of the stored bytes, streamed row by row.
    static func hash(_ db: Database, sequence: Int64) throws -> [UInt8] {
        var hasher = BLAKE2b.Hasher(outputByteCount: BlobID.byteCount)
        let rows = try Row.fetchCursor(db, sql: "SELECT data FROM blob_chunk WHERE blob = ? ORDER BY offset", arguments: [sequence])
        while let row = try rows.next() {
            let data: Data = try row.value(0)
            hasher.update([UInt8](data))
        }
        return hasher.finalize()
    }
}
