#if Postgres
import Foundation
import Logging
import PostgresNIO
@testable import ValisePostgres
import ValiseStore

/// A LISTEN connection of the test's own on the stores' announcement channel. The channel
/// belongs to the database, which every suite's schemas share, so tests look for names of
/// their own in what it hears rather than for silence.
final class AnnouncementWatcher {
    private let connection: PostgresConnection
    private var notifications: PostgresNotificationSequence.AsyncIterator
    private let sentinel = "sentinel " + UUID().uuidString
    private let channel: String

    private init(connection: PostgresConnection, channel: String, notifications: PostgresNotificationSequence.AsyncIterator) {
        self.connection = connection
        self.channel = channel
        self.notifications = notifications
    }

    /// Runs `body` with a watcher listening from the start; the connection closes after it.
    static func watching(schema: String, _ body: (AnnouncementWatcher) async throws -> Void) async throws {
        guard let host = PostgresStoreConfiguration.Host(TestPostgres.address ?? "") else {
            throw StoreError(.failure, "VALISE_TEST_POSTGRES is not HOST:PORT")
        }
        let configuration = PostgresConnection.Configuration(
            host: host.name, port: host.port, username: "valise", password: nil, database: "valise_test", tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "test.listen"))
        do {
            let channel = PostgresAnnouncement.channel(schema: schema)
            try await connection.listen(on: channel) { notifications in
                try await body(AnnouncementWatcher(connection: connection, channel: channel, notifications: notifications.makeAsyncIterator()))
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// The changes announced since the last call: it announces a sentinel of its own and reads
    /// up to it, since PostgreSQL delivers notifications in the order their transactions
    /// committed. Bounded, so that a flood from other suites cannot hang the test.
    func changesSoFar() async throws -> [QueueChange] {
        try await connection.query("SELECT pg_notify(\(channel), \(sentinel))", logger: Logger(label: "test.listen"))
        var changes: [QueueChange] = []
        for _ in 0..<100_000 {
            guard let notification = try await notifications.next(), notification.payload != sentinel else { return changes }
            changes += PostgresAnnouncement.changes(notification.payload)
        }
        return changes
    }
}

extension TestPostgres {
    /// Two nodes: two stores on one fresh schema.
    static func twoNodes() throws -> (PostgresEnvelopeStore, PostgresEnvelopeStore) {
        let schema = freshSchema()
        return (try store(schema: schema), try store(schema: schema))
    }
}

extension PostgresEnvelopeStore {
    /// Puts a queued envelope into the tables with SQL, as the queue's own accept would (the
    /// envelope, its remembered id, its mailbox's and destination's totals), for suites that
    /// test what is done to queued envelopes.
    func insertQueued(
        _ id: MessageID, mailbox: String, destination: String? = nil, precedence: Precedence = .routine, arrivedAt: UInt64,
        expiresAt: UInt64, size: Int
    ) throws {
        let key = ByteBuffer(bytes: id.bytes)
        let body = ByteBuffer(repeating: 0x5A, count: size)
        let logger = Logger(label: "test.insert")
        try database.withTransaction { connection in
            if let destination {
                try await connection.query(
                    """
                    INSERT INTO forward (destination, mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body)
                    VALUES (\(destination), \(mailbox), \(key), \(Int16(precedence.rawValue)), 0, \(Int64(arrivedAt)), \(Int64(expiresAt)), 0, \(Int32(size)), \(body))
                    """, logger: logger)
                try await connection.query(
                    """
                    INSERT INTO destination_usage (destination, count, bytes) VALUES (\(destination), 1, \(Int64(size)))
                    ON CONFLICT (destination) DO UPDATE SET count = destination_usage.count + 1, bytes = destination_usage.bytes + excluded.bytes
                    """, logger: logger)
            } else {
                try await connection.query(
                    """
                    INSERT INTO envelope (mailbox, id, precedence, requested_ttl, arrived_at, expires_at, hops, size, body)
                    VALUES (\(mailbox), \(key), \(Int16(precedence.rawValue)), 0, \(Int64(arrivedAt)), \(Int64(expiresAt)), 0, \(Int32(size)), \(body))
                    """, logger: logger)
            }
            try await connection.query(
                """
                INSERT INTO mailbox_usage (mailbox, count, bytes) VALUES (\(mailbox), 1, \(Int64(size)))
                ON CONFLICT (mailbox) DO UPDATE SET count = mailbox_usage.count + 1, bytes = mailbox_usage.bytes + excluded.bytes
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO message (id, mailbox, state, since, expires_at, forget_at)
                VALUES (\(key), \(mailbox), \(Int16(MessageState.pending.rawValue)), \(Int64(arrivedAt)), \(Int64(expiresAt)), \(Int64(expiresAt + 86_400)))
                """, logger: logger)
        }
    }

    /// A remembered id's (state, since, reason), read with SQL.
    func rememberedRow(_ id: MessageID) throws -> (state: Int, since: UInt64, reason: Int)? {
        let key = ByteBuffer(bytes: id.bytes)
        let logger = Logger(label: "test.read")
        let row = try database.withConnection { connection -> [Int64]? in
            let rows = try await connection.query("SELECT state, since, reason FROM message WHERE id = \(key)", logger: logger)
            for try await (state, since, reason) in rows.decode((Int16, Int64, Int16).self) { return [Int64(state), since, Int64(reason)] }
            return nil
        }
        return row.map { (Int($0[0]), UInt64($0[1]), Int($0[2])) }
    }

    /// A usage table's (count, bytes) for one name, nil without a row.
    func usage(_ table: String, _ name: String) throws -> [Int64]? {
        let logger = Logger(label: "test.read")
        let column = table == "mailbox_usage" ? "mailbox" : "destination"
        return try database.withConnection { connection -> [Int64]? in
            let rows = try await connection.query(
                "SELECT count, bytes FROM \(unescaped: table) WHERE \(unescaped: column) = \(name)", logger: logger)
            for try await (count, bytes) in rows.decode((Int64, Int64).self) { return [count, bytes] }
            return nil
        }
    }
}
#endif
