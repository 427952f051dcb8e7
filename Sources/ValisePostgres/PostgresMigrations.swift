#if Postgres
import Logging
import PostgresNIO
import ValiseStore

/// One versioned schema change: statements run in one transaction, recorded in
/// `schema_migrations` with it.
struct PostgresMigration: Sendable {
    let version: Int
    let name: String
    let statements: [String]
}

/// The store's schema, one migration per change, never edited once released (a change is a
/// new migration).
enum PostgresSchema {
    static let migrations: [PostgresMigration] = [version1, version2]

    /// The queue, the remembered ids, the prekeys and the shared directory log: the SQLite
    /// store's tables as of issue 18, with leases. No column names a message's sender.
    static let version1 = PostgresMigration(version: 1, name: "queue-v1", statements: [
        // Envelopes for local mailboxes. `sequence` orders arrivals within a precedence; it
        // is never used as a cursor (sequence values do not commit in order). A lease names
        // the node and connection delivering the envelope, until lease_expires.
        """
        CREATE TABLE envelope (
            sequence bigserial PRIMARY KEY,
            mailbox text NOT NULL,
            id bytea NOT NULL UNIQUE,
            precedence smallint NOT NULL,
            requested_ttl smallint NOT NULL,
            arrived_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            hops integer NOT NULL,
            size integer NOT NULL,
            body bytea NOT NULL,
            held boolean NOT NULL DEFAULT false,
            lease_node text,
            lease_connection bigint,
            lease_expires bigint
        )
        """,
        "CREATE INDEX envelope_delivery ON envelope (mailbox, precedence DESC, sequence)",
        "CREATE INDEX envelope_expiry ON envelope (expires_at)",
        "CREATE INDEX envelope_lease ON envelope (lease_node) WHERE lease_node IS NOT NULL",
        // Envelopes waiting to be forwarded to another relay (custody transfer), leased to
        // the relay link pushing them.
        """
        CREATE TABLE forward (
            sequence bigserial PRIMARY KEY,
            destination text NOT NULL,
            mailbox text NOT NULL,
            id bytea NOT NULL UNIQUE,
            precedence smallint NOT NULL,
            requested_ttl smallint NOT NULL,
            arrived_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            hops integer NOT NULL,
            size integer NOT NULL,
            body bytea NOT NULL,
            held boolean NOT NULL DEFAULT false,
            lease_node text,
            lease_connection bigint,
            lease_expires bigint
        )
        """,
        "CREATE INDEX forward_order ON forward (destination, precedence DESC, sequence)",
        "CREATE INDEX forward_expiry ON forward (expires_at)",
        "CREATE INDEX forward_mailbox ON forward (mailbox)",
        "CREATE INDEX forward_lease ON forward (lease_node) WHERE lease_node IS NOT NULL",
        // Every accepted id until forget_at: its primary key is what catches a duplicate
        // (INSERT … ON CONFLICT), never a read before the insert. state and reason are the
        // SQLite store's numbers (MessageState, UndeliverableReason).
        """
        CREATE TABLE message (
            id bytea PRIMARY KEY,
            mailbox text NOT NULL,
            state smallint NOT NULL,
            since bigint NOT NULL,
            expires_at bigint NOT NULL,
            forget_at bigint NOT NULL,
            reason smallint NOT NULL DEFAULT 0,
            forwarded_to text
        )
        """,
        "CREATE INDEX message_forget ON message (forget_at)",
        // Totals for quotas, kept in step with envelope and forward; their rows are also the
        // locks that keep two nodes from both filling the last room of a mailbox.
        "CREATE TABLE mailbox_usage (mailbox text PRIMARY KEY, count bigint NOT NULL, bytes bigint NOT NULL)",
        "CREATE TABLE destination_usage (destination text PRIMARY KEY, count bigint NOT NULL, bytes bigint NOT NULL)",
        """
        CREATE TABLE prekey (
            mailbox text PRIMARY KEY,
            signed_prekey bytea NOT NULL,
            signed_prekey_signature bytea NOT NULL,
            envelope_key bytea NOT NULL,
            envelope_key_signature bytea NOT NULL,
            updated_at bigint NOT NULL
        )
        """,
        // One-time prekeys are handed out with DELETE … RETURNING: two nodes never give out one twice.
        "CREATE TABLE one_time_prekey (mailbox text NOT NULL, key bytea NOT NULL, added_at bigint NOT NULL, PRIMARY KEY (mailbox, key))",
        """
        CREATE TABLE kem_prekey (
            mailbox text NOT NULL,
            key bytea NOT NULL,
            signature bytea NOT NULL,
            last_resort boolean NOT NULL,
            added_at bigint NOT NULL,
            PRIMARY KEY (mailbox, key)
        )
        """,
        // The directory log the nodes share (position 0 is genesis), each entry's canonical bytes.
        "CREATE TABLE directory_entry (position bigint PRIMARY KEY, entry bytea NOT NULL)",
    ])

    /// Attachment blobs (issue 20), apart from the envelopes: their own tables, so that
    /// `queue.maxStoreBytes` and the envelopes' totals never count them. No column names an
    /// uploader or an envelope.
    static let version2 = PostgresMigration(version: 2, name: "blobs-v1", statements: [
        // One row per blob, the lock an append takes (SELECT … FOR UPDATE) so that two nodes
        // given parts of one blob after a failover append in turn. `committed` bytes are in
        // blob_chunk; `complete` once the last byte is in and the hash matched the id.
        """
        CREATE TABLE blob (
            id bytea PRIMARY KEY,
            size bigint NOT NULL CHECK (size > 0),
            committed bigint NOT NULL DEFAULT 0 CHECK (committed >= 0 AND committed <= size),
            complete boolean NOT NULL DEFAULT false,
            expires_at bigint NOT NULL,
            fetches_left integer NOT NULL CHECK (fetches_left >= 0)
        )
        """,
        "CREATE INDEX blob_expiry ON blob (expires_at)",
        // The bytes, in rows of at most 262,144 bytes from `start`, contiguous. Stored out of
        // line without compression: a blob is ciphertext, which pglz cannot shrink.
        """
        CREATE TABLE blob_chunk (
            blob bytea NOT NULL REFERENCES blob (id) ON DELETE CASCADE,
            start bigint NOT NULL,
            data bytea NOT NULL CHECK (octet_length(data) BETWEEN 1 AND 262144),
            PRIMARY KEY (blob, start)
        )
        """,
        "ALTER TABLE blob_chunk ALTER COLUMN data SET STORAGE EXTERNAL",
        // Relays the blob goes to once complete, with the fetches declared there; a row goes
        // when the destination took custody (or refused for good). `sequence`: oldest first.
        // The node whose link is sending it holds it until lease_until, so that the other
        // nodes' links to that relay do not send the same bytes meanwhile.
        """
        CREATE TABLE blob_forward (
            sequence bigserial PRIMARY KEY,
            blob bytea NOT NULL REFERENCES blob (id) ON DELETE CASCADE,
            destination text NOT NULL,
            fetches integer NOT NULL CHECK (fetches >= 0),
            lease_node text,
            lease_until bigint,
            UNIQUE (blob, destination)
        )
        """,
        "CREATE INDEX blob_forward_order ON blob_forward (destination, sequence)",
    ])

    /// Advisory locks (pg_try_advisory_xact_lock): one node at a time runs the expiry sweep,
    /// and one at a time purges a revoked member. Advisory locks belong to the database, so
    /// the key is a hash of the schema and the lock's name: two relays' schemas in one
    /// database never wait for each other.
    static let sweepLock = "sweep"
    static let purgeLock = "purge"
    /// Serialises blob declarations, so that two nodes cannot both take the last room of
    /// `queue.maxBlobStoreBytes` (declarations are one per upload: rare enough to queue).
    static let blobQuotaLock = "blob-quota"

    /// Serialises migrations across nodes that start together (pg_advisory_lock's key:
    /// "valise" + 1 in ASCII, arbitrary but fixed).
    static let migrationLock: Int64 = 0x7661_6C69_7365_0001

    /// Creates the schema if needed and runs every migration not yet recorded, holding the
    /// advisory lock, so that two nodes starting at once apply each migration once. Refuses a
    /// database that a newer valised has migrated further.
    static func migrate(_ database: PostgresDatabase) throws(StoreError) {
        let schema = database.configuration.schema
        let logger = database.logger
        // The schema's name is a plain identifier (checked in PostgresStoreConfiguration):
        // DDL cannot take it as a parameter.
        let applied: [String] = try database.withConnection { connection in
            _ = try await connection.rows("SELECT pg_advisory_lock(\(migrationLock))", logger: logger)
            do {
                var names: [String] = []
                try await connection.rows(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
                try await connection.rows("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                    """, logger: logger)
                var done = Set<Int>()
                for try await version in try await connection.rows("SELECT version FROM schema_migrations", logger: logger).decode(Int.self) {
                    done.insert(version)
                }
                let known = Set(migrations.map(\.version))
                if let newer = done.subtracting(known).max() {
                    throw StoreError(.corrupt, """
                        the PostgreSQL schema \(schema) was migrated by a newer valised (migration \(newer)); \
                        run that version, or restore a backup
                        """)
                }
                for migration in migrations.sorted(by: { $0.version < $1.version }) where !done.contains(migration.version) {
                    try await connection.rows("BEGIN", logger: logger)
                    do {
                        for statement in migration.statements {
                            try await connection.rows(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await connection.rows(
                            "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
                        try await connection.rows("COMMIT", logger: logger)
                    } catch {
                        _ = try? await connection.rows("ROLLBACK", logger: logger)
                        throw error
                    }
                    names.append(migration.name)
                }
                _ = try await connection.rows("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
                return names
            } catch {
                _ = try? await connection.rows("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
                throw error
            }
        }
        if !applied.isEmpty {
            logger.info("PostgreSQL schema migrated", metadata: ["postgres.schema": "\(schema)", "migrations": "\(applied.joined(separator: ","))"])
        }
    }
}
#endif
