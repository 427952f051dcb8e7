#if Postgres
import Foundation
public import Logging
import PostgresNIO
public import ValiseStore

/// The relay's queue in PostgreSQL, shared by several valised nodes of one relay: the same
/// contract as `SQLiteEnvelopeStore` (one conformance suite runs against both), plus leases,
/// announcements between nodes and the shared directory log (`SharedQueue`,
/// `SharedDirectoryLog`). Every write is one transaction, committed (with
/// `synchronous_commit` on, on the synchronous standby too) before the method returns.
public final class PostgresEnvelopeStore: Sendable {
    public let database: PostgresDatabase
    public let limits: QueueLimits
    /// The relay-enforced cap on the envelopes' bytes (`queue.maxStoreBytes`): PostgreSQL
    /// itself stops hard when its disk fills, so the relay refuses first.
    public let maximumBytes: Int?
    public let node: String
    let logger: Logger
    /// The dedicated LISTEN connection behind `changes()`, started by the first call.
    let listener: PostgresListener

    public init(
        configuration: PostgresStoreConfiguration, limits: QueueLimits = QueueLimits(), maximumBytes: Int? = nil, logger: Logger
    ) throws(StoreError) {
        self.database = try PostgresDatabase(configuration: configuration, logger: logger)
        self.limits = limits
        self.maximumBytes = maximumBytes
        self.node = UUID().uuidString.lowercased()
        self.logger = logger
        self.listener = PostgresListener(database: database, logger: logger)
        try PostgresSchema.migrate(database)
    }

    deinit {
        listener.close()
    }

    /// Closes the pool and the LISTEN connection.
    public func close() {
        listener.close()
        database.close()
    }
}
#endif
