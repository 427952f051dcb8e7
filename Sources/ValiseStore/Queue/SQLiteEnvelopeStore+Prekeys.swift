import Foundation
import GRDB

extension SQLiteEnvelopeStore: PrekeyStore {
    static func registerPrekeyMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("prekeys-v1") { db in
            try db.execute(sql: """
                CREATE TABLE prekey (
                    mailbox TEXT PRIMARY KEY,
                    signed_prekey BLOB NOT NULL,
                    signed_prekey_signature BLOB NOT NULL,
                    envelope_key BLOB NOT NULL,
                    envelope_key_signature BLOB NOT NULL,
                    updated_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE one_time_prekey (
                    mailbox TEXT NOT NULL,
                    key BLOB NOT NULL,
                    PRIMARY KEY (mailbox, key)
                ) WITHOUT ROWID;
                """)
        }
        // One-time prekeys go out oldest upload first, so that the device, which keeps a
        // bounded number of private halves, drops only ones the relay no longer holds.
        migrator.registerMigration("prekeys-v2") { db in
            try db.execute(sql: "ALTER TABLE one_time_prekey ADD COLUMN added_at INTEGER NOT NULL DEFAULT 0")
        }
    }

    /// envelope_key now holds an X-Wing key (1,216 bytes): an X25519 one (32) seals nothing
    /// a current device opens, so it is dropped; each device uploads again at its next sync.
    static func registerXWingEnvelopeKeyMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("prekeys-xwing-envelope-key") { db in
            try db.execute(sql: "DELETE FROM prekey WHERE length(envelope_key) != \(StoredPrekeys.envelopeKeyByteCount)")
        }
    }

    public func storePrekeys(mailbox: Mailbox, prekeys: StoredPrekeys, oneTimePrekeys: [[UInt8]]) throws(StoreError) -> Int {
        guard prekeys.isWellFormed, oneTimePrekeys.allSatisfy({ $0.count == 32 }) else {
            throw StoreError(.failure, "cannot store prekeys: a key or signature has the wrong length")
        }
        do {
            return try pool.write { db in
                let held = Set(try Data.fetchAll(db, sql: "SELECT key FROM one_time_prekey WHERE mailbox = ?", arguments: [mailbox.name]).map { [UInt8]($0) })
                let new = Set(oneTimePrekeys).subtracting(held)
                guard held.count + new.count <= PrekeyLimits.maximumOneTimePrekeys else {
                    throw StoreError(.limitReached, "a device may hold at most \(PrekeyLimits.maximumOneTimePrekeys) one-time prekeys on the relay (it has \(held.count), and sent \(new.count) new)")
                }
                try db.execute(
                    sql: """
                        INSERT INTO prekey (mailbox, signed_prekey, signed_prekey_signature, envelope_key, envelope_key_signature, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT(mailbox) DO UPDATE SET signed_prekey = excluded.signed_prekey,
                            signed_prekey_signature = excluded.signed_prekey_signature, envelope_key = excluded.envelope_key,
                            envelope_key_signature = excluded.envelope_key_signature, updated_at = excluded.updated_at
                        """,
                    arguments: [mailbox.name, Data(prekeys.signedPrekey), Data(prekeys.signedPrekeySignature), Data(prekeys.envelopeKey),
                                Data(prekeys.envelopeKeySignature), Int64(prekeys.updatedAt)])
                for key in new {
                    try db.execute(
                        sql: "INSERT INTO one_time_prekey (mailbox, key, added_at) VALUES (?, ?, ?)",
                        arguments: [mailbox.name, Data(key), Int64(clamping: prekeys.updatedAt)])
                }
                return held.count + new.count
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.storeError(error, doing: "store prekeys in \(path)")
        }
    }

    public func takeBundles(_ mailboxes: [Mailbox], takeOneTimePrekey: ((Int) -> Bool)?) throws(StoreError) -> [PrekeyBundleRecord?] {
        do {
            // Only a fetch that may take one-time prekeys writes (and commits to the disk).
            guard let takeOneTimePrekey else {
                return try pool.read { db in try mailboxes.map { try Self.bundle(db, $0, take: nil) } }
            }
            return try pool.write { db in
                try mailboxes.enumerated().map { index, mailbox in try Self.bundle(db, mailbox, take: { takeOneTimePrekey(index) }) }
            }
        } catch {
            throw Self.storeError(error, doing: "hand out prekey bundles in \(path)")
        }
    }

    private static func bundle(_ db: Database, _ mailbox: Mailbox, take: (() -> Bool)?) throws -> PrekeyBundleRecord? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM prekey WHERE mailbox = ?", arguments: [mailbox.name]) else { return nil }
        let prekeys = StoredPrekeys(
            signedPrekey: [UInt8](row["signed_prekey"] as Data), signedPrekeySignature: [UInt8](row["signed_prekey_signature"] as Data),
            envelopeKey: [UInt8](row["envelope_key"] as Data), envelopeKeySignature: [UInt8](row["envelope_key_signature"] as Data),
            updatedAt: UInt64(row["updated_at"] as Int64))
        var oneTime: Data?
        if let take, let oldest = try Data.fetchOne(
            db, sql: "SELECT key FROM one_time_prekey WHERE mailbox = ? ORDER BY added_at, key LIMIT 1", arguments: [mailbox.name]), take() {
            try db.execute(sql: "DELETE FROM one_time_prekey WHERE mailbox = ? AND key = ?", arguments: [mailbox.name, oldest])
            oneTime = oldest
        }
        let left = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM one_time_prekey WHERE mailbox = ?", arguments: [mailbox.name]) ?? 0
        return PrekeyBundleRecord(prekeys: prekeys, oneTimePrekey: oneTime.map { [UInt8]($0) }, oneTimePrekeysLeft: left)
    }

    public func oneTimePrekeyCount(mailbox: Mailbox) throws(StoreError) -> Int {
        do {
            return try pool.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM one_time_prekey WHERE mailbox = ?", arguments: [mailbox.name]) ?? 0
            }
        } catch {
            throw Self.storeError(error, doing: "count one-time prekeys in \(path)")
        }
    }

    /// Deletes a revoked device's prekeys (part of `purge`).
    static func deletePrekeys(_ db: Database, mailbox: Mailbox) throws {
        try db.execute(sql: "DELETE FROM prekey WHERE mailbox = ?", arguments: [mailbox.name])
        try db.execute(sql: "DELETE FROM one_time_prekey WHERE mailbox = ?", arguments: [mailbox.name])
    }
}
