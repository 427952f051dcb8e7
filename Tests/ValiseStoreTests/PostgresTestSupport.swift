#if Postgres
import Foundation
import Logging
import Testing
import ValisePostgres
import ValiseStore

/// The throwaway PostgreSQL cluster that scripts/test starts: VALISE_TEST_POSTGRES is
/// "HOST:PORT" (database valise_test, user valise, trust on loopback). Each store gets a
/// schema of its own, so that suites running in parallel never see each other's rows.
enum TestPostgres {
    static let address = ProcessInfo.processInfo.environment["VALISE_TEST_POSTGRES"]
    static var isAvailable: Bool { address != nil }

    static func configuration(schema: String = freshSchema(), pool: Int = 4) -> PostgresStoreConfiguration {
        let host = PostgresStoreConfiguration.Host(address ?? "127.0.0.1:5432")!
        return PostgresStoreConfiguration(
            hosts: [host], database: "valise_test", user: "valise", tls: .disable, pool: pool, schema: schema)
    }

    static func freshSchema() -> String {
        "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    static func store(schema: String = freshSchema(), limits: QueueLimits = QueueLimits(), maximumBytes: Int? = nil) throws -> PostgresEnvelopeStore {
        try PostgresEnvelopeStore(
            configuration: configuration(schema: schema), limits: limits, maximumBytes: maximumBytes,
            logger: Logger(label: "test.postgres"))
    }
}

@Suite("PostgreSQL connection", .enabled(if: TestPostgres.isAvailable))
struct PostgresConnectionTests {
    @Test("opens, migrates, and a second node on the same schema finds it migrated")
    func opensAndMigrates() throws {
        let schema = TestPostgres.freshSchema()
        let first = try TestPostgres.store(schema: schema)
        let second = try TestPostgres.store(schema: schema)
        #expect(first.node != second.node)
        #expect(first.database.primaryHost != nil)
        first.close()
        second.close()
    }

    @Test("a host with no server is unavailable, in words")
    func unreachable() throws {
        var configuration = TestPostgres.configuration()
        configuration.hosts = [PostgresStoreConfiguration.Host("127.0.0.1:1")!]
        configuration.connectTimeoutSeconds = 1
        #expect {
            _ = try PostgresEnvelopeStore(configuration: configuration, logger: Logger(label: "test"))
        } throws: { error in
            (error as? StoreError)?.kind == .unavailable && "\(error)".contains("127.0.0.1:1")
        }
    }
}
#endif
