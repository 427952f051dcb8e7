import Foundation
import GRDB

/// What the relay's queue and the client's message store share about their SQLite files:
/// made under a temporary name and renamed into place, recognised by their application id
/// before anything is opened for writing, and refused when a newer version wrote them.
enum SQLiteFile {
    struct Kind: Sendable {
        /// `PRAGMA application_id`, bytes 68–71 of the file header.
        let applicationID: Int32
        /// What the file is, for messages: "a Valise queue".
        let name: String
        /// The program that writes it, for messages.
        let program: String
    }

    /// Creates the store if it is missing (and `create` allows), then checks that the file
    /// is one of ours that this version understands, before anything writes to it.
    static func prepare(_ path: String, kind: Kind, migrator: DatabaseMigrator, create: Bool) throws(StoreError) {
        if !FileManager.default.fileExists(atPath: path) {
            guard create else { throw StoreError(.failure, "there is no store at \(path)") }
            guard !FileManager.default.fileExists(atPath: path + "-wal") else {
                throw StoreError(.corrupt, "\(path) is missing but its write-ahead log \(path)-wal is there; restore the store from a backup, or move the log away to start an empty one")
            }
            try Self.create(at: path, kind: kind, migrator: migrator)
        }
        try checkHeader(path, kind: kind)
        try checkSchema(path, kind: kind, migrator: migrator)
    }

    /// Makes a new, empty store under a temporary name and renames it into place, so that a
    /// crash while creating leaves no half-made file at `path`: whatever is found there
    /// later is either a whole store or not ours.
    static func create(at path: String, kind: Kind, migrator: DatabaseMigrator) throws(StoreError) {
        let temporary = path + ".creating"
        for leftover in [temporary, temporary + "-wal", temporary + "-shm"] {
            try? FileManager.default.removeItem(atPath: leftover)
        }
        do {
            var configuration = Configuration()
            configuration.prepareDatabase { db in
                // Incremental vacuum lets a store on a full disk hand freed pages back. It
                // must be set before any table exists, so here: GRDB's WAL set-up, which
                // runs after this, creates and drops one.
                try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
            }
            let pool = try DatabasePool(path: temporary, configuration: configuration)
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA application_id = \(kind.applicationID)")
            }
            try migrator.migrate(pool)
            try pool.close()
            let descriptor = open(temporary, O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else { throw StoreError(.failure, "cannot create \(path): \(String(cString: strerror(errno)))") }
            defer { close(descriptor) }
            guard fsync(descriptor) == 0 else { throw StoreError(.failure, "cannot create \(path): \(String(cString: strerror(errno)))") }
            guard rename(temporary, path) == 0 else { throw StoreError(.failure, "cannot create \(path): \(String(cString: strerror(errno)))") }
            try SecureFile.syncDirectory(SecureFile.parent(of: path))
        } catch let error as StoreError {
            throw error
        } catch {
            throw storeError(error, doing: "create \(path)")
        }
    }

    /// Refuses a store written by a newer version (a migration this one does not know),
    /// through a read-only connection, which never writes the file (not even a checkpoint).
    static func checkSchema(_ path: String, kind: Kind, migrator: DatabaseMigrator) throws(StoreError) {
        var configuration = Configuration()
        configuration.readonly = true
        let superseded: Bool
        do {
            let database = try DatabaseQueue(path: path, configuration: configuration)
            superseded = try database.read { db in try migrator.hasBeenSuperseded(db) }
            try database.close()
        } catch {
            throw storeError(error, doing: "open \(path)")
        }
        guard !superseded else {
            throw StoreError(.failure, "\(path) was written by a newer version of \(kind.program); run that version, or restore a backup")
        }
    }

    /// Reads the 100-byte SQLite header without opening the database, so a foreign file is
    /// refused untouched.
    static func checkHeader(_ path: String, kind: Kind) throws(StoreError) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw StoreError(.failure, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        let header = [UInt8]((try? handle.read(upToCount: 100)) ?? Data())
        let notOurs = "\(path) is not \(kind.name)"
        guard !header.isEmpty else {
            throw StoreError(.corrupt, "\(notOurs): the file is empty. It is never left empty, so move the file away and restore it from a backup")
        }
        guard header.count == 100, header.starts(with: Array("SQLite format 3\0".utf8)) else {
            throw StoreError(.corrupt, "\(notOurs): it is not an SQLite database")
        }
        let applicationID = header[68..<72].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard applicationID == UInt32(bitPattern: kind.applicationID) else {
            throw StoreError(.corrupt, "\(notOurs): it is an SQLite database of another application")
        }
        guard header[18] == 2, header[19] == 2 else {
            throw StoreError(.corrupt, "\(notOurs): it is always in WAL mode; restore it from a backup")
        }
    }

    /// Prepares the file (`prepare`), opens its pool and brings its schema up to date: what
    /// the relay's queue and blob store share. Every connection overwrites what is deleted
    /// (`secure_delete`: a seized disk does not give up what the relay let go of, said
    /// explicitly as SQLite's default is off), folds its log every 1000 pages (4 MiB) and cuts
    /// the log back to 64 MiB after a burst; `extra` adds a store's own settings. A checkpoint
    /// that must empty the log waits up to 5 s for readers instead of failing at once. The
    /// writer commits at `durability` (`setSynchronous`).
    static func openPool(
        _ path: String, kind: Kind, migrator: DatabaseMigrator, create: Bool, durability: Durability, label: String,
        extra: (@Sendable (Database) throws -> Void)? = nil
    ) throws(StoreError) -> DatabasePool {
        try prepare(path, kind: kind, migrator: migrator, create: create)
        var configuration = Configuration()
        configuration.label = label
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 1000")
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            try extra?(db)
        }
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            try setSynchronous(pool, durability: durability, path: path)
            try migrator.migrate(pool)
            return pool
        } catch let error as StoreError {
            throw error
        } catch {
            throw storeError(error, doing: "open \(path)")
        }
    }

    /// GRDB puts a pool's connections in synchronous=NORMAL once WAL is on (after
    /// prepareDatabase), which fsyncs only at checkpoints: a commit could be lost to a power
    /// cut after it was acknowledged. Every write goes through the one writer connection, so
    /// FULL there makes every commit durable before it returns — unless the operator chose
    /// `.os`, which is exactly NORMAL.
    static func setSynchronous(_ pool: DatabasePool, durability: Durability, path: String) throws {
        let level = durability.synchronousLevel
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(level)")
            guard try Int.fetchOne(db, sql: "PRAGMA synchronous") == level else {
                throw StoreError(.failure, "cannot open \(path): SQLite refused synchronous=\(level)")
            }
        }
    }

    static func storeError(_ error: any Error, doing what: String) -> StoreError {
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_FULL:
                return StoreError(.storageFull, "cannot \(what): the store is full (disk or configured size)")
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                return StoreError(.corrupt, "cannot \(what): the store is damaged (\(error.message ?? "corrupt")); restore it from a backup")
            default:
                return StoreError(.failure, "cannot \(what): \(error.message ?? "\(error.resultCode)")")
            }
        }
        if let error = error as? DamagedColumn {
            return StoreError(.corrupt, "cannot \(what): the store is damaged (\(error)); restore it from a backup")
        }
        return StoreError(.failure, "cannot \(what): \(error)")
    }
}
