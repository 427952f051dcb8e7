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
        // ML-KEM-1024 prekeys for PQXDH: one-time ones (last_resort 0) and the one
        // last-resort key (last_resort 1), replaced by every upload.
        migrator.registerMigration("kem-prekeys") { db in
            try db.execute(sql: """
                CREATE TABLE kem_prekey (
                    mailbox TEXT NOT NULL,
                    key BLOB NOT NULL,
                    signature BLOB NOT NULL,
                    last_resort INTEGER NOT NULL,
                    added_at INTEGER NOT NULL,
                    PRIMARY KEY (mailbox, key)
                ) WITHOUT ROWID;
                """)
        }
    }

    /// envelope_key now holds an X-Wing key (1,216 bytes): an X25519 one (32) seals nothing
    /// a current device opens, so it is dropped; each device uploads again at its next sync.
    static func registerXWingEnvelopeKeyMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("prekeys-xwing-envelope-key") { db in
            try db.execute(sql: "DELETE FROM prekey WHERE length(envelope_key) != \(StoredPrekeys.envelopeKeyByteCount)")
        }
    }

    public func storePrekeys(
        mailbox: Mailbox, prekeys: StoredPrekeys, oneTimePrekeys: [[UInt8]], lastResortKEMPrekey: StoredKEMPrekey, oneTimeKEMPrekeys: [StoredKEMPrekey]
    ) throws(StoreError) -> PrekeyCounts {
        try Self.checkLengths(
            prekeys: prekeys, oneTimePrekeys: oneTimePrekeys, lastResortKEMPrekey: lastResortKEMPrekey, oneTimeKEMPrekeys: oneTimeKEMPrekeys)
        do {
            return try pool.write { db in
                let held = Set(try Data.fetchAll(db, sql: "SELECT key FROM one_time_prekey WHERE mailbox = ?", arguments: [mailbox.name]).map { [UInt8]($0) })
                let new = Set(oneTimePrekeys).subtracting(held)
                guard held.count + new.count <= PrekeyLimits.maximumOneTimePrekeys else {
                    throw StoreError(.limitReached, "a device may hold at most \(PrekeyLimits.maximumOneTimePrekeys) one-time prekeys on the relay (it has \(held.count), and sent \(new.count) new)")
                }
                let heldKEM = Set(try Data.fetchAll(
                    db, sql: "SELECT key FROM kem_prekey WHERE mailbox = ? AND last_resort = 0", arguments: [mailbox.name]).map { [UInt8]($0) })
                var newKEM: [StoredKEMPrekey] = []
                for prekey in oneTimeKEMPrekeys where !heldKEM.contains(prekey.key) && !newKEM.contains(where: { $0.key == prekey.key }) {
                    newKEM.append(prekey)
                }
                guard heldKEM.count + newKEM.count <= PrekeyLimits.maximumOneTimeKEMPrekeys else {
                    throw StoreError(.limitReached, "a device may hold at most \(PrekeyLimits.maximumOneTimeKEMPrekeys) one-time KEM prekeys on the relay (it has \(heldKEM.count), and sent \(newKEM.count) new)")
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
                try db.execute(sql: "DELETE FROM kem_prekey WHERE mailbox = ? AND last_resort = 1", arguments: [mailbox.name])
                // A key once uploaded as one-time stays one-time: the signature names its kind.
                try db.execute(
                    sql: "INSERT OR IGNORE INTO kem_prekey (mailbox, key, signature, last_resort, added_at) VALUES (?, ?, ?, 1, ?)",
                    arguments: [mailbox.name, Data(lastResortKEMPrekey.key), Data(lastResortKEMPrekey.signature), Int64(clamping: prekeys.updatedAt)])
                for prekey in newKEM {
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO kem_prekey (mailbox, key, signature, last_resort, added_at) VALUES (?, ?, ?, 0, ?)",
                        arguments: [mailbox.name, Data(prekey.key), Data(prekey.signature), Int64(clamping: prekeys.updatedAt)])
                }
                return PrekeyCounts(oneTime: held.count + new.count, oneTimeKEM: heldKEM.count + newKEM.count)
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
        guard let prekeys = try signedPrekeys(db, mailbox) else { return nil }
        var oneTime: Data?
        var kem: StoredKEMPrekey?
        var lastResort = false
        if let take {
            let oldest = try Data.fetchOne(
                db, sql: "SELECT key FROM one_time_prekey WHERE mailbox = ? ORDER BY added_at, key LIMIT 1", arguments: [mailbox.name])
            let oldestKEM = try Row.fetchOne(
                db, sql: "SELECT key, signature FROM kem_prekey WHERE mailbox = ? AND last_resort = 0 ORDER BY added_at, key LIMIT 1",
                arguments: [mailbox.name])
            // One allowance covers both kinds: they go out together, or neither does.
            if oldest != nil || oldestKEM != nil, take() {
                if let oldest {
                    try db.execute(sql: "DELETE FROM one_time_prekey WHERE mailbox = ? AND key = ?", arguments: [mailbox.name, oldest])
                    oneTime = oldest
                }
                if let oldestKEM {
                    let key = oldestKEM["key"] as Data
                    try db.execute(sql: "DELETE FROM kem_prekey WHERE mailbox = ? AND key = ?", arguments: [mailbox.name, key])
                    kem = StoredKEMPrekey(key: [UInt8](key), signature: [UInt8](oldestKEM["signature"] as Data))
                }
            }
        }
        if kem == nil, let row = try Row.fetchOne(
            db, sql: "SELECT key, signature FROM kem_prekey WHERE mailbox = ? AND last_resort = 1", arguments: [mailbox.name]) {
            kem = StoredKEMPrekey(key: [UInt8](try row.value("key", as: Data.self)), signature: [UInt8](try row.value("signature", as: Data.self)))
            lastResort = true
        }
        let left = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM one_time_prekey WHERE mailbox = ?", arguments: [mailbox.name]) ?? 0
        let kemLeft = try kemPrekeyCount(db, mailbox)
        return PrekeyBundleRecord(
            prekeys: prekeys, oneTimePrekey: oneTime.map { [UInt8]($0) }, oneTimePrekeysLeft: left, kemPrekey: kem,
            kemPrekeyIsLastResort: lastResort, oneTimeKEMPrekeysLeft: kemLeft)
    }

    private static func kemPrekeyCount(_ db: Database, _ mailbox: Mailbox) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM kem_prekey WHERE mailbox = ? AND last_resort = 0", arguments: [mailbox.name]) ?? 0
    }

    public func oneTimeKEMPrekeyCount(mailbox: Mailbox) throws(StoreError) -> Int {
        do {
            return try pool.read { db in try Self.kemPrekeyCount(db, mailbox) }
        } catch {
            throw Self.storeError(error, doing: "count one-time KEM prekeys in \(path)")
        }
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

    private static func signedPrekeys(_ db: Database, _ mailbox: Mailbox) throws -> StoredPrekeys? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM prekey WHERE mailbox = ?", arguments: [mailbox.name]) else { return nil }
        return StoredPrekeys(
            signedPrekey: [UInt8](try row.value("signed_prekey", as: Data.self)), signedPrekeySignature: [UInt8](try row.value("signed_prekey_signature", as: Data.self)),
            envelopeKey: [UInt8](try row.value("envelope_key", as: Data.self)), envelopeKeySignature: [UInt8](try row.value("envelope_key_signature", as: Data.self)),
            updatedAt: try row.unsigned("updated_at", as: UInt64.self))
    }

    public func deleteStalePrekeys(_ mailboxes: [Mailbox], current: PrekeyOwnership) throws(StoreError) -> [Mailbox] {
        do {
            return try pool.write { db in
                var emptied: [Mailbox] = []
                for mailbox in mailboxes {
                    guard let prekeys = try Self.signedPrekeys(db, mailbox), current.signedPrekeys(mailbox, prekeys) else {
                        if try Self.deletePrekeys(db, mailbox: mailbox) > 0 { emptied.append(mailbox) }
                        continue
                    }
                    guard let owns = current.kemPrekey else { continue }
                    // A device of the new identity key may have uploaded before this ran: its
                    // signed keys stay, and only KEM prekeys an older identity key signed go.
                    // One-time X25519 prekeys carry no signature, so the old device's cannot be
                    // told from the new one's: all go (a bundle without one is valid, and the
                    // new device tops them up at its next sync).
                    try db.execute(sql: "DELETE FROM one_time_prekey WHERE mailbox = ?", arguments: [mailbox.name])
                    let rows = try Row.fetchAll(
                        db, sql: "SELECT key, signature, last_resort FROM kem_prekey WHERE mailbox = ?", arguments: [mailbox.name])
                    for row in rows {
                        let prekey = StoredKEMPrekey(key: [UInt8](try row.value("key", as: Data.self)), signature: [UInt8](try row.value("signature", as: Data.self)))
                        if !owns(mailbox, prekey, (try row.value("last_resort", as: Int64.self)) != 0) {
                            try db.execute(sql: "DELETE FROM kem_prekey WHERE mailbox = ? AND key = ?", arguments: [mailbox.name, try row.value("key", as: Data.self)])
                        }
                    }
                }
                return emptied
            }
        } catch {
            throw Self.storeError(error, doing: "delete stale prekeys in \(path)")
        }
    }

    /// Deletes a revoked device's prekeys (part of `purge`), or a rotated member's.
    /// Returns how many rows went.
    @discardableResult
    static func deletePrekeys(_ db: Database, mailbox: Mailbox) throws -> Int {
        var deleted = 0
        for table in ["prekey", "one_time_prekey", "kem_prekey"] {
            try db.execute(sql: "DELETE FROM \(table) WHERE mailbox = ?", arguments: [mailbox.name])
            deleted += db.changesCount
        }
        return deleted
    }
}
