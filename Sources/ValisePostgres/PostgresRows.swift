#if Postgres
import Logging
import NIOCore
import PostgresNIO

/// Every row of one query, collected on the connection's event loop before the caller reads
/// any. All of this module's queries go through `PostgresConnection.rows(_:logger:)`, never
/// postgres-nio's async `query`, whose row stream has back-pressure: postgres-nio 1.33.2
/// (the newest here) traps in `RowStreamStateMachine.channelReadComplete` ("How can we receive
/// a body part, after a channelReadComplete, but no read has been forwarded yet") when the
/// server closes the connection while such a stream waits for its consumer. The fault row
/// "postgres: server stopped" met it: PostgreSQL stopped in immediate mode mid-load killed a
/// relay node (SIGILL) instead of the node answering UNAVAILABLE. Collected through
/// postgres-nio's EventLoopFuture API, a stream asks for more as soon as rows arrive and
/// never waits for demand. Holding a result whole is safe here: every query is bounded (a
/// LIMIT, one blob's parts in a range, a mailbox's prekeys, the directory log since a count).
struct PostgresRows: AsyncSequence, Sendable {
    typealias Element = PostgresRow

    let rows: [PostgresRow]

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: IndexingIterator<[PostgresRow]>
        mutating func next() async -> PostgresRow? { base.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: rows.makeIterator()) }
}

extension PostgresConnection {
    /// Runs `query` and collects its rows (see `PostgresRows` for why not `query`).
    @discardableResult
    func rows(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> PostgresRows {
        PostgresRows(rows: try await self.query(query, logger: logger, file: file, line: line).get().rows)
    }
}
#endif
