import Foundation
import GRDB

/// The embedded envelope store: one SQLite file in WAL mode through GRDB, every commit
/// durable (`synchronous = FULL`: the WAL is fsynced before a commit returns). Writes are
/// meant to be funnelled through one thread in batches (group commit); reads run
/// concurrently with them (WAL readers).
public final class SQLiteEnvelopeStore: EnvelopeStore {
    let pool: DatabasePool
    public let limits: QueueLimits
    public let path: String
    public let durability: Durability
    let reserve: SpaceReserve

    /// `PRAGMA application_id` "VALQ": bytes 68–71 of the file header say whose file it is
    /// before anything is opened for writing.
    static let fileKind = SQLiteFile.Kind(applicationID: 0x5641_4C51, name: "a Valise queue", program: "valised")

    /// Opens the store at `path`, creating it first when `create` is set and no file is
    /// there. An existing file must be a Valise queue this version understands (SQLite, WAL,
    /// the Valise application id, no migration it does not know); anything else is refused
    /// before a byte of it changes. `maximumBytes` caps the file's size (SQLite's
    /// max_page_count): past it, new envelopes are refused as storage full.
    /// `reserveBytes` are kept allocated in `path-reserve` and given back when the disk is
    /// full, so that acknowledgements, expiry and purges still go through (0: no reserve).
    /// `durability` says when a commit counts as done: `.full` (the default) once the log is
    /// on the disk, `.os` once the operating system has it (see `Durability`).
    public init(
        path: String, limits: QueueLimits = QueueLimits(), maximumBytes: Int? = nil,
        reserveBytes: Int = SQLiteEnvelopeStore.defaultReserveBytes, create: Bool = true, durability: Durability = .full
    ) throws(StoreError) {
        self.path = path
        self.limits = limits
        self.durability = durability
        // Past `maximumBytes`, SQLite answers SQLITE_FULL: storage full, as for a full disk.
        // (With a group commit of at most 4 MiB, the 8 MiB space reserve always covers one
        // fold of the log.)
        var cap: (@Sendable (Database) throws -> Void)?
        if let maximumBytes {
            cap = { db in
                let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                try db.execute(sql: "PRAGMA max_page_count = \(max(16, maximumBytes / pageSize))")
            }
        }
        pool = try SQLiteFile.openPool(
            path, kind: Self.fileKind, migrator: Self.migrator, create: create, durability: durability, label: "valise.queue", extra: cap)
        reserve = SpaceReserve(path: path + "-reserve", bytes: reserveBytes)
    }

    public static let defaultReserveBytes = 8 << 20

    func reclaimFreePagesForTests() { reclaimFreePages() }

    /// A PRAGMA's value on the writer connection (`synchronous`: 2 is FULL), for tests.
    func writerPragma(_ name: String) throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA \(name)") ?? -1 }
    }

    /// Whether the space reserve is whole. While it is not, new envelopes are refused as
    /// storage full.
    public var spaceReserveHeld: Bool { reserve.isHeld }

    /// Gives the store's free pages (left by deletions) back to the file system, and empties
    /// the write-ahead log, so that the space reserve can be allocated again. Best effort:
    /// a failure leaves the store as it was.
    func reclaimFreePages() {
        try? pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA incremental_vacuum")
            try db.checkpoint(.truncate)
        }
    }

    /// Runs a deletion; if the disk is full, gives the reserve back, folds the log into the
    /// database (the room it needs is what the reserve kept), and tries once more without
    /// overwriting the freed pages (which would write them all to the log again): those
    /// are overwritten when they are reused.
    func freeingSpace<T>(_ operation: () throws(StoreError) -> T) throws(StoreError) -> T {
        do {
            return try operation()
        } catch where error.kind == .storageFull && reserve.release() {
            try? pool.writeWithoutTransaction { db in
                try db.checkpoint(.truncate)
                try db.execute(sql: "PRAGMA secure_delete = FAST")
            }
            defer { try? pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA secure_delete = ON") } }
            return try operation()
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // Envelopes waiting for delivery. No column names the sender: the relay never
            // stores who sent a message.
            try db.execute(sql: """
                CREATE TABLE envelope (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    mailbox TEXT NOT NULL,
                    id BLOB NOT NULL UNIQUE,
                    precedence INTEGER NOT NULL,
                    arrived_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    size INTEGER NOT NULL,
                    body BLOB NOT NULL
                );
                CREATE INDEX envelope_delivery ON envelope(mailbox, precedence DESC, sequence);
                CREATE INDEX envelope_expiry ON envelope(expires_at);
                -- Every accepted id, for dedup and status, until forget_at.
                CREATE TABLE message (
                    id BLOB PRIMARY KEY,
                    mailbox TEXT NOT NULL,
                    state INTEGER NOT NULL,
                    since INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    forget_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX message_forget ON message(forget_at);
                -- Per-mailbox totals for quotas, kept in step with envelope.
                CREATE TABLE mailbox_usage (
                    mailbox TEXT PRIMARY KEY,
                    count INTEGER NOT NULL,
                    bytes INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        registerPrekeyMigration(&migrator)
        migrator.registerMigration("message-reason") { db in
            // Why an id is undeliverable (`UndeliverableReason`); 0 in every other state.
            // Before this, state 4 ("purged") came only from revocations.
            try db.execute(sql: """
                ALTER TABLE message ADD COLUMN reason INTEGER NOT NULL DEFAULT 0;
                UPDATE message SET reason = \(UndeliverableReason.recipientRevoked.rawValue) WHERE state = \(MessageState.undeliverable.rawValue);
                """)
        }
        registerXWingEnvelopeKeyMigration(&migrator)
        migrator.registerMigration("envelope-requested-ttl") { db in
            // The TTL class the sender asked for (the relay protocol's number, 0 DEFAULT to 4
            // MONTH), delivered with the envelope: its sealed contents bind it. Envelopes
            // queued before have 0, and no current device opens them anyway.
            try db.execute(sql: "ALTER TABLE envelope ADD COLUMN requested_ttl INTEGER NOT NULL DEFAULT 0")
        }
        registerForwardingMigration(&migrator)
        registerHoldMigration(&migrator)
        return migrator
    }

    static func storeError(_ error: any Error, doing what: String) -> StoreError { SQLiteFile.storeError(error, doing: what) }
}

/// When the relay counts an envelope as stored, and so answers `Accepted`.
public enum Durability: String, Sendable, CaseIterable {
    /// Once the write-ahead log is on the disk (SQLite `synchronous=FULL`, an fsync per
    /// group commit): an accepted envelope survives a crash of the process, of the
    /// operating system, and a power cut. The default.
    case full
    /// Once the operating system has the write (`synchronous=NORMAL` in WAL mode: the log
    /// is fsynced only at checkpoints). Survives a crash of the relay process, not a crash
    /// of the operating system or a power cut: envelopes accepted in the last moments
    /// before one can be lost, breaking the delivery contract. For sites that choose
    /// throughput over that guarantee, knowingly (config/valised.yaml says so too).
    case os

    /// SQLite's `PRAGMA synchronous` value.
    var synchronousLevel: Int { self == .full ? 2 : 1 }
}

extension [UInt8] {
    /// Bytes as an SQLite BLOB.
    var databaseBlob: Data { Data(self) }
}
