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
    static let migrations: [PostgresMigration] = []

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
            _ = try await connection.query("SELECT pg_advisory_lock(\(migrationLock))", logger: logger)
            do {
                var names: [String] = []
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                    """, logger: logger)
                var done = Set<Int>()
                for try await version in try await connection.query("SELECT version FROM schema_migrations", logger: logger).decode(Int.self) {
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
                    try await connection.query("BEGIN", logger: logger)
                    do {
                        for statement in migration.statements {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await connection.query(
                            "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
                        try await connection.query("COMMIT", logger: logger)
                    } catch {
                        _ = try? await connection.query("ROLLBACK", logger: logger)
                        throw error
                    }
                    names.append(migration.name)
                }
                _ = try await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
                return names
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
                throw error
            }
        }
        if !applied.isEmpty {
            logger.info("PostgreSQL schema migrated", metadata: ["postgres.schema": "\(schema)", "migrations": "\(applied.joined(separator: ","))"])
        }
    }
}
#endif
