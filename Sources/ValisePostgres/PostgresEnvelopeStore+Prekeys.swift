#if Postgres
import Logging
import NIOCore
import PostgresNIO
public import ValiseStore

/// Prekeys on PostgreSQL, as `SQLiteEnvelopeStore` keeps them, shared by every node.
///
/// Two nodes must never hand out the same one-time prekey: a fetch locks the oldest key of
/// each kind with `FOR UPDATE SKIP LOCKED` (passing over keys another fetch, on any node,
/// holds), asks the caller, and deletes what it hands out in the same transaction. An upload
/// writes the mailbox's `prekey` row first, whose row lock queues concurrent uploads of the
/// same mailbox (so that two cannot both pass the limit check) and stale-key deletions
/// behind it.
extension PostgresEnvelopeStore: PrekeyStore {
    public func storePrekeys(
        mailbox: Mailbox, prekeys: StoredPrekeys, oneTimePrekeys: [[UInt8]], lastResortKEMPrekey: StoredKEMPrekey, oneTimeKEMPrekeys: [StoredKEMPrekey]
    ) throws(StoreError) -> PrekeyCounts {
        try Self.checkLengths(
            prekeys: prekeys, oneTimePrekeys: oneTimePrekeys, lastResortKEMPrekey: lastResortKEMPrekey, oneTimeKEMPrekeys: oneTimeKEMPrekeys)
        let name = mailbox.name
        let addedAt = Int64(clamping: prekeys.updatedAt)
        return try database.withTransaction { [logger = self.logger] connection in
            // First, for its row lock (see above); a refusal below rolls it back.
            try await connection.rows(
                """
                INSERT INTO prekey (mailbox, signed_prekey, signed_prekey_signature, envelope_key, envelope_key_signature, updated_at)
                VALUES (\(name), \(ByteBuffer(bytes: prekeys.signedPrekey)), \(ByteBuffer(bytes: prekeys.signedPrekeySignature)),
                    \(ByteBuffer(bytes: prekeys.envelopeKey)), \(ByteBuffer(bytes: prekeys.envelopeKeySignature)), \(Int64(clamping: prekeys.updatedAt)))
                ON CONFLICT (mailbox) DO UPDATE SET signed_prekey = excluded.signed_prekey,
                    signed_prekey_signature = excluded.signed_prekey_signature, envelope_key = excluded.envelope_key,
                    envelope_key_signature = excluded.envelope_key_signature, updated_at = excluded.updated_at
                """, logger: logger)
            let held = Set(try await Self.bytes(connection.rows("SELECT key FROM one_time_prekey WHERE mailbox = \(name)", logger: logger)))
            let new = Set(oneTimePrekeys).subtracting(held)
            guard held.count + new.count <= PrekeyLimits.maximumOneTimePrekeys else {
                throw StoreError(.limitReached, "a device may hold at most \(PrekeyLimits.maximumOneTimePrekeys) one-time prekeys on the relay (it has \(held.count), and sent \(new.count) new)")
            }
            let heldKEM = Set(try await Self.bytes(
                connection.rows("SELECT key FROM kem_prekey WHERE mailbox = \(name) AND NOT last_resort", logger: logger)))
            var newKEM: [StoredKEMPrekey] = []
            for prekey in oneTimeKEMPrekeys where !heldKEM.contains(prekey.key) && !newKEM.contains(where: { $0.key == prekey.key }) {
                newKEM.append(prekey)
            }
            guard heldKEM.count + newKEM.count <= PrekeyLimits.maximumOneTimeKEMPrekeys else {
                throw StoreError(.limitReached, "a device may hold at most \(PrekeyLimits.maximumOneTimeKEMPrekeys) one-time KEM prekeys on the relay (it has \(heldKEM.count), and sent \(newKEM.count) new)")
            }
            if !new.isEmpty {
                try await connection.rows(
                    """
                    INSERT INTO one_time_prekey (mailbox, key, added_at)
                    SELECT \(name), key, \(addedAt) FROM unnest(\(new.map { ByteBuffer(bytes: $0) })) AS incoming(key)
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
            try await connection.rows("DELETE FROM kem_prekey WHERE mailbox = \(name) AND last_resort", logger: logger)
            // A key once uploaded as one-time stays one-time: the signature names its kind.
            try await connection.rows(
                """
                INSERT INTO kem_prekey (mailbox, key, signature, last_resort, added_at)
                VALUES (\(name), \(ByteBuffer(bytes: lastResortKEMPrekey.key)), \(ByteBuffer(bytes: lastResortKEMPrekey.signature)), true, \(addedAt))
                ON CONFLICT DO NOTHING
                """, logger: logger)
            if !newKEM.isEmpty {
                try await connection.rows(
                    """
                    INSERT INTO kem_prekey (mailbox, key, signature, last_resort, added_at)
                    SELECT \(name), key, signature, false, \(addedAt)
                    FROM unnest(\(newKEM.map { ByteBuffer(bytes: $0.key) }), \(newKEM.map { ByteBuffer(bytes: $0.signature) })) AS incoming(key, signature)
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
            return PrekeyCounts(oneTime: held.count + new.count, oneTimeKEM: heldKEM.count + newKEM.count)
        }
    }

    public func takeBundles(_ mailboxes: [Mailbox], takeOneTimePrekey: ((Int) -> Bool)?) throws(StoreError) -> [PrekeyBundleRecord?] {
        guard !mailboxes.isEmpty else { return [] }
        let question = takeOneTimePrekey.map(OneTimePrekeyQuestion.init)
        return try database.withTransaction { [logger = self.logger] connection in
            // Without a question nothing is locked or deleted: a read-only transaction, with
            // one snapshot for all the mailboxes as in SQLite. A take stays in read committed,
            // where a row another fetch deleted is passed over, not a serialisation failure.
            if question == nil {
                try await connection.rows("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            }
            var bundles: [PrekeyBundleRecord?] = []
            for (index, mailbox) in mailboxes.enumerated() {
                bundles.append(try await Self.bundle(mailbox, index: index, question: question, on: connection, logger: logger))
            }
            return bundles
        }
    }

    private static func bundle(
        _ mailbox: Mailbox, index: Int, question: OneTimePrekeyQuestion?, on connection: PostgresConnection, logger: Logger
    ) async throws -> PrekeyBundleRecord? {
        let name = mailbox.name
        guard let prekeys = try await signedPrekeys(mailbox, locking: false, on: connection, logger: logger) else { return nil }
        var oneTime: [UInt8]?
        var kem: StoredKEMPrekey?
        var lastResort = false
        if let question {
            let oldest = try await bytes(connection.rows(
                "SELECT key FROM one_time_prekey WHERE mailbox = \(name) ORDER BY added_at, key LIMIT 1 FOR UPDATE SKIP LOCKED", logger: logger)).first
            let oldestKEM = try await kemPrekeys(connection.rows(
                """
                SELECT key, signature, last_resort FROM kem_prekey WHERE mailbox = \(name) AND NOT last_resort
                ORDER BY added_at, key LIMIT 1 FOR UPDATE SKIP LOCKED
                """, logger: logger)).first?.prekey
            // One allowance covers both kinds: they go out together, or neither does. The
            // rows are locked by this transaction, so each DELETE removes its key.
            if oldest != nil || oldestKEM != nil, question.ask(index) {
                if let oldest {
                    try await connection.rows(
                        "DELETE FROM one_time_prekey WHERE mailbox = \(name) AND key = \(ByteBuffer(bytes: oldest))", logger: logger)
                    oneTime = oldest
                }
                if let oldestKEM {
                    try await connection.rows(
                        "DELETE FROM kem_prekey WHERE mailbox = \(name) AND key = \(ByteBuffer(bytes: oldestKEM.key))", logger: logger)
                    kem = oldestKEM
                }
            }
        }
        if kem == nil, let last = try await kemPrekeys(connection.rows(
            "SELECT key, signature, last_resort FROM kem_prekey WHERE mailbox = \(name) AND last_resort", logger: logger)).first {
            kem = last.prekey
            lastResort = true
        }
        let left = try await counts(mailbox, on: connection, logger: logger)
        return PrekeyBundleRecord(
            prekeys: prekeys, oneTimePrekey: oneTime, oneTimePrekeysLeft: left.oneTime, kemPrekey: kem, kemPrekeyIsLastResort: lastResort,
            oneTimeKEMPrekeysLeft: left.oneTimeKEM)
    }

    public func oneTimePrekeyCount(mailbox: Mailbox) throws(StoreError) -> Int {
        try database.withConnection { [logger = self.logger] connection in try await Self.counts(mailbox, on: connection, logger: logger).oneTime }
    }

    public func oneTimeKEMPrekeyCount(mailbox: Mailbox) throws(StoreError) -> Int {
        try database.withConnection { [logger = self.logger] connection in try await Self.counts(mailbox, on: connection, logger: logger).oneTimeKEM }
    }

    public func deleteStalePrekeys(_ mailboxes: [Mailbox], current: PrekeyOwnership) throws(StoreError) -> [Mailbox] {
        guard !mailboxes.isEmpty else { return [] }
        return try database.withTransaction { [logger = self.logger] connection in
            var emptied = Set<Mailbox>()
            // In one order on every node, so that two nodes locking the same rows never deadlock.
            for mailbox in Set(mailboxes).sorted(by: { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }) {
                // Locked: an upload of this mailbox waits, and is not deleted unseen.
                guard let prekeys = try await Self.signedPrekeys(mailbox, locking: true, on: connection, logger: logger),
                      current.signedPrekeys(mailbox, prekeys)
                else {
                    if try await Self.deletePrekeys(of: mailbox, on: connection, logger: logger) > 0 { emptied.insert(mailbox) }
                    continue
                }
                guard let owns = current.kemPrekey else { continue }
                // A device of the new identity key may have uploaded before this ran: its
                // signed keys stay, and only KEM prekeys an older identity key signed go.
                // One-time X25519 prekeys carry no signature, so the old device's cannot be
                // told from the new one's: all go (a bundle without one is valid, and the
                // new device tops them up at its next sync).
                try await connection.rows("DELETE FROM one_time_prekey WHERE mailbox = \(mailbox.name)", logger: logger)
                let stale = try await Self.kemPrekeys(connection.rows(
                    "SELECT key, signature, last_resort FROM kem_prekey WHERE mailbox = \(mailbox.name)", logger: logger)
                ).filter { !owns(mailbox, $0.prekey, $0.lastResort) }
                if !stale.isEmpty {
                    try await connection.rows(
                        "DELETE FROM kem_prekey WHERE mailbox = \(mailbox.name) AND key = ANY(\(stale.map { ByteBuffer(bytes: $0.prekey.key) }))",
                        logger: logger)
                }
            }
            return mailboxes.filter { emptied.remove($0) != nil }
        }
    }

    /// Deletes every prekey of `mailbox` (a revoked device's, in a purge, or a rotated
    /// member's) in one statement; returns how many rows went. A first upload that commits
    /// meanwhile is invisible to the statement's snapshot, so none of its rows go.
    @discardableResult
    static func deletePrekeys(of mailbox: Mailbox, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let name = mailbox.name
        let rows = try await connection.rows(
            """
            WITH a AS (DELETE FROM prekey WHERE mailbox = \(name) RETURNING 1),
                 b AS (DELETE FROM one_time_prekey WHERE mailbox = \(name) RETURNING 1),
                 c AS (DELETE FROM kem_prekey WHERE mailbox = \(name) RETURNING 1)
            SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b) + (SELECT count(*) FROM c)
            """, logger: logger)
        var deleted = 0
        for try await count in rows.decode(Int64.self) { deleted = Int(count) }
        return deleted
    }

    // MARK: Reading

    private static func signedPrekeys(
        _ mailbox: Mailbox, locking: Bool, on connection: PostgresConnection, logger: Logger
    ) async throws -> StoredPrekeys? {
        var query: PostgresQuery = """
            SELECT signed_prekey, signed_prekey_signature, envelope_key, envelope_key_signature, updated_at
            FROM prekey WHERE mailbox = \(mailbox.name)
            """
        if locking { query.sql += " FOR UPDATE" }
        let rows = try await connection.rows(query, logger: logger)
        for try await (signed, signature, envelope, envelopeSignature, updatedAt) in rows.decode((ByteBuffer, ByteBuffer, ByteBuffer, ByteBuffer, Int64).self) {
            return StoredPrekeys(
                signedPrekey: Array(signed.readableBytesView), signedPrekeySignature: Array(signature.readableBytesView),
                envelopeKey: Array(envelope.readableBytesView), envelopeKeySignature: Array(envelopeSignature.readableBytesView),
                updatedAt: UInt64(max(updatedAt, 0)))
        }
        return nil
    }

    /// How many one-time prekeys of each kind the mailbox holds (the last-resort KEM prekey not counted).
    private static func counts(_ mailbox: Mailbox, on connection: PostgresConnection, logger: Logger) async throws -> PrekeyCounts {
        let rows = try await connection.rows(
            """
            SELECT (SELECT count(*) FROM one_time_prekey WHERE mailbox = \(mailbox.name)),
                   (SELECT count(*) FROM kem_prekey WHERE mailbox = \(mailbox.name) AND NOT last_resort)
            """, logger: logger)
        var counts = PrekeyCounts(oneTime: 0, oneTimeKEM: 0)
        for try await (oneTime, kem) in rows.decode((Int64, Int64).self) { counts = PrekeyCounts(oneTime: Int(oneTime), oneTimeKEM: Int(kem)) }
        return counts
    }

    /// The first column of every row, as bytes.
    private static func bytes(_ rows: PostgresRows) async throws -> [[UInt8]] {
        var result: [[UInt8]] = []
        for try await value in rows.decode(ByteBuffer.self) { result.append(Array(value.readableBytesView)) }
        return result
    }

    /// Rows of (key, signature, last_resort).
    private static func kemPrekeys(_ rows: PostgresRows) async throws -> [(prekey: StoredKEMPrekey, lastResort: Bool)] {
        var result: [(prekey: StoredKEMPrekey, lastResort: Bool)] = []
        for try await (key, signature, lastResort) in rows.decode((ByteBuffer, ByteBuffer, Bool).self) {
            result.append((StoredKEMPrekey(key: Array(key.readableBytesView), signature: Array(signature.readableBytesView)), lastResort))
        }
        return result
    }
}

/// The caller's `takeOneTimePrekey`, asked inside the transaction on the database's event
/// loop. Sound although the closure is not Sendable: the caller's thread stays blocked in
/// `PostgresDatabase.blocking` until the transaction ends, and the questions are asked one
/// after another, so the closure never runs beside its owner or itself.
private struct OneTimePrekeyQuestion: @unchecked Sendable {
    let ask: (Int) -> Bool
}
#endif
