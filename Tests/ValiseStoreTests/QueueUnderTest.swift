import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

#if Postgres
import Logging
import PostgresNIO
import ValisePostgres
#endif

/// The queue's contract (issue 19) has one test suite run against both stores: a contract
/// test takes `kind: StoreKind` from `StoreKind.allCases` and opens its store through a
/// `QueueUnderTest`. Suites about SQLite itself (its file, WAL, migrations of old files, the
/// space reserve, SecureFile, LocalStore) keep `QueueFile` and say so at their top.

/// The stores a contract test runs on: SQLite always; PostgreSQL when built with the trait
/// (`--traits Postgres`) and a test cluster is named in VALISE_TEST_POSTGRES (scripts/test
/// starts one, and sets VALISE_TEST_REQUIRE_POSTGRES=1 so that a run cannot pass by
/// silently leaving PostgreSQL out: see `StoreKindTests`).
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    static var allCases: [StoreKind] {
        #if Postgres
        if TestPostgres.isAvailable { return [.sqlite, .postgres] }
        #endif
        return [.sqlite]
    }

    var testDescription: String { rawValue }

    /// Whether the run must include PostgreSQL (CI's scripts/test says so).
    static var postgresRequired: Bool { ProcessInfo.processInfo.environment["VALISE_TEST_REQUIRE_POSTGRES"] == "1" }
}

/// Everything the contract suites call: the queue, the prekeys and the operator's view.
typealias ContractStore = EnvelopeStore & OperatorQueue & PrekeyStore

/// One test's queue: a SQLite file in a temporary directory, or a schema of its own in the
/// PostgreSQL test cluster. Each `open` makes a new store on the same data: for SQLite a
/// restart, for PostgreSQL a restart or a second node, which is what a test that reopens
/// means by it. Going away, it closes the PostgreSQL stores and drops their schema (the
/// SQLite file goes with its directory).
final class QueueUnderTest: @unchecked Sendable {
    let kind: StoreKind
    private let file = QueueFile()
    private let lock = NSLock()
    #if Postgres
    private let schema = TestPostgres.freshSchema()
    private var postgresStores: [PostgresEnvelopeStore] = []
    #endif

    init(_ kind: StoreKind) { self.kind = kind }

    func open(limits: QueueLimits = QueueLimits(), maximumBytes: Int? = nil) throws -> any ContractStore {
        switch kind {
        case .sqlite:
            return try file.open(limits: limits, maximumBytes: maximumBytes)
        case .postgres:
            #if Postgres
            let store = try TestPostgres.store(schema: schema, limits: limits, maximumBytes: maximumBytes)
            lock.lock()
            postgresStores.append(store)
            lock.unlock()
            // Checked at run time, not by the compiler, so that this suite builds before the
            // PostgreSQL store conforms (issue 19 lands in parts): until then its tests fail here.
            guard let contract = store as Any as? any ContractStore else {
                throw QueueUnderTestError("PostgresEnvelopeStore does not conform to EnvelopeStore, OperatorQueue and PrekeyStore yet")
            }
            return contract
            #else
            throw QueueUnderTestError("built without the Postgres trait")
            #endif
        }
    }

    /// "ok", or what is inconsistent: SQLite's own integrity check; for PostgreSQL, that the
    /// usage rows (the quotas' totals) equal what the queues hold and that every queued id is
    /// remembered as pending.
    func integrityCheck(_ store: any ContractStore) throws -> String {
        switch kind {
        case .sqlite:
            return try #require(store as? SQLiteEnvelopeStore).integrityCheck()
        case .postgres:
            #if Postgres
            let database = try #require((store as Any as? PostgresEnvelopeStore)?.database)
            return try database.withConnection { connection in try await Self.consistency(connection) }
            #else
            throw QueueUnderTestError("built without the Postgres trait")
            #endif
        }
    }

    deinit {
        #if Postgres
        // The test is over: nothing else holds these stores any more.
        let stores = postgresStores
        if let first = stores.first {
            let drop = PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE")
            _ = try? first.database.withConnection { connection in
                try await connection.query(drop, logger: Logger(label: "test.postgres"))
            }
        }
        for store in stores { store.close() }
        #endif
    }
}

#if Postgres
extension QueueUnderTest {
    /// Rows that break the store's invariants, counted per kind (all zero when consistent).
    /// A usage row at zero and no row at all are the same.
    static func consistency(_ connection: PostgresConnection) async throws -> String {
        let query: PostgresQuery = """
            SELECT
              (SELECT count(*) FROM
                (SELECT mailbox, count(*) AS count, sum(size) AS bytes
                   FROM (SELECT mailbox, size FROM envelope UNION ALL SELECT mailbox, size FROM forward) queued GROUP BY mailbox) held
                FULL JOIN (SELECT * FROM mailbox_usage WHERE count <> 0 OR bytes <> 0) usage USING (mailbox)
                WHERE held.count IS DISTINCT FROM usage.count OR held.bytes IS DISTINCT FROM usage.bytes),
              (SELECT count(*) FROM
                (SELECT destination, count(*) AS count, sum(size) AS bytes FROM forward GROUP BY destination) held
                FULL JOIN (SELECT * FROM destination_usage WHERE count <> 0 OR bytes <> 0) usage USING (destination)
                WHERE held.count IS DISTINCT FROM usage.count OR held.bytes IS DISTINCT FROM usage.bytes),
              (SELECT count(*) FROM (SELECT id, mailbox FROM envelope UNION ALL SELECT id, mailbox FROM forward) queued
                LEFT JOIN message USING (id)
                WHERE message.state IS DISTINCT FROM \(MessageState.pending.rawValue) OR message.mailbox IS DISTINCT FROM queued.mailbox)
            """
        let logger = Logger(label: "test.postgres")
        for try await (mailboxes, destinations, ids) in try await connection.query(query, logger: logger).decode((Int64, Int64, Int64).self) {
            if mailboxes == 0 && destinations == 0 && ids == 0 { return "ok" }
            return "mailbox usage rows wrong: \(mailboxes), destination usage rows wrong: \(destinations), queued ids not pending: \(ids)"
        }
        return "no answer"
    }
}
#endif

struct QueueUnderTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite("Queue contract: the stores it runs on")
struct StoreKindTests {
    @Test("when CI requires PostgreSQL (VALISE_TEST_REQUIRE_POSTGRES=1), the contract suites run on it too")
    func postgresWhenRequired() {
        guard StoreKind.postgresRequired else { return }
        #expect(StoreKind.allCases.contains(.postgres), """
            VALISE_TEST_REQUIRE_POSTGRES=1 but the contract suites would run on SQLite only: \
            build with --traits Postgres and set VALISE_TEST_POSTGRES=HOST:PORT
            """)
    }
}
