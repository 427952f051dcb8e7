#if Postgres
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import ValiseStore

/// The store's LISTEN on `PostgresAnnouncement.channel`, on a connection of its own (never
/// a pooled one: a pooled connection goes back to the pool, and a transaction-pooling proxy
/// would drop the LISTEN), to the primary the hosts give. One listener per store, started by
/// the first `changes()`; every stream gets every announcement.
///
/// After each (re)connect every stream gets `.everything` (what was announced meanwhile is
/// lost); when the database cannot be reached, `.unavailable`, then attempts again with
/// backoff (at most 2 s apart). A stream that falls behind by more than its buffer loses
/// the oldest changes and gets `.everything`.
final class PostgresListener: Sendable {
    private let database: PostgresDatabase
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    /// Changes a slow reader may have pending before the oldest give way to `.everything`.
    static let buffered = 256
    /// The longest wait between two connection attempts.
    static let maximumBackoff: TimeAmount = .seconds(2)

    private struct State {
        var streams: [Int: AsyncStream<QueueChange>.Continuation] = [:]
        var nextStream = 0
        var task: Task<Void, Never>?
        var closed = false
        /// The server process of the current LISTEN connection.
        var backendProcess: Int32?
    }

    init(database: PostgresDatabase, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// A new stream of changes; the first starts the listener.
    func subscribe() -> AsyncStream<QueueChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: QueueChange.self, bufferingPolicy: .bufferingNewest(Self.buffered))
        let key = state.withLockedValue { state -> Int? in
            guard !state.closed else { return nil }
            let key = state.nextStream
            state.nextStream += 1
            state.streams[key] = continuation
            if state.task == nil {
                state.task = Task(executorPreference: database.executor) { [self] in await run() }
            }
            return key
        }
        guard let key else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLockedValue { $0.streams.removeValue(forKey: key) }
        }
        return stream
    }

    /// Stops listening and finishes every stream. Waits (briefly) for the connection to
    /// close, unless called on the database's own event loops.
    func close() {
        let (task, streams) = state.withLockedValue { state in
            state.closed = true
            defer {
                state.streams = [:]
                state.task = nil
            }
            return (state.task, Array(state.streams.values))
        }
        for stream in streams { stream.finish() }
        guard let task else { return }
        task.cancel()
        guard !database.group.any().inEventLoop else { return }
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: database.executor) {
            await task.value
            done.signal()
        }
        _ = done.wait(timeout: .now() + .seconds(2))
    }

    private func broadcast(_ change: QueueChange) {
        let streams = state.withLockedValue { Array($0.streams.values) }
        for stream in streams {
            if case .dropped = stream.yield(change), change != .everything {
                // The oldest change went: `.everything` (now the newest) stands for it.
                stream.yield(.everything)
            }
        }
    }

    /// Ends the LISTEN connection from the server's side (pg_terminate_backend), as a
    /// failover or an administrator would: for tests. False if there was none.
    func terminateConnection() throws(StoreError) -> Bool {
        guard let process = state.withLockedValue({ $0.backendProcess }) else { return false }
        let logger = self.logger
        return try database.withConnection { connection in
            var ended = false
            for try await value in try await connection.rows("SELECT pg_terminate_backend(\(process))", logger: logger).decode(Bool.self) {
                ended = value
            }
            return ended
        }
    }

    // MARK: The connection

    private func run() async {
        var backoff: TimeAmount = .milliseconds(100)
        var unavailable = false
        while !Task.isCancelled {
            do {
                let connection = try await connectToPrimary()
                backoff = .milliseconds(100)
                unavailable = false
                do {
                    try await connection.listen(on: PostgresAnnouncement.channel(schema: database.configuration.schema)) { notifications in
                        // Listening now: whatever was announced before is looked at again.
                        broadcast(.everything)
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask { [self] in
                                for try await notification in notifications {
                                    for change in PostgresAnnouncement.changes(notification.payload) { broadcast(change) }
                                }
                            }
                            group.addTask { [self] in try await heartbeat(connection) }
                            // Either ends only when the connection does.
                            _ = try await group.next()
                            group.cancelAll()
                        }
                    }
                } catch {
                    if !Task.isCancelled {
                        logger.warning("lost the PostgreSQL LISTEN connection; reconnecting", metadata: [
                            "error": "\(PostgresDatabase.words(error))",
                        ])
                    }
                }
                try? await connection.close()
                // A server that takes connections and drops them at once is not hammered.
                try? await Task.sleep(nanoseconds: 100_000_000)
            } catch {
                if Task.isCancelled { break }
                if !unavailable {
                    unavailable = true
                    logger.warning("cannot LISTEN on PostgreSQL", metadata: ["error": "\(PostgresDatabase.words(error))"])
                    broadcast(.unavailable)
                }
                try? await Task.sleep(nanoseconds: UInt64(backoff.nanoseconds))
                backoff = min(backoff * 2, Self.maximumBackoff)
            }
        }
    }

    /// A query every `SharedQueueLease.pollSeconds` on the LISTEN connection: a connection
    /// cut off without a word (a partition, a dead host) would otherwise wait for
    /// announcements forever. One that does not answer within the period is closed, which
    /// ends the listen and starts a reconnect.
    private func heartbeat(_ connection: PostgresConnection) async throws {
        let period = SharedQueueLease.pollSeconds * 1_000_000_000
        while true {
            try await Task.sleep(nanoseconds: period)
            let watchdog = Task(executorPreference: database.executor) {
                try await Task.sleep(nanoseconds: period)
                try? await connection.close()
            }
            defer { watchdog.cancel() }
            try await connection.rows("SELECT 1", logger: logger)
        }
    }

    /// A connection to the first host that is not in recovery: the pool's primary first,
    /// then the configured hosts in order. Its `application_name` is "valised-listen", so
    /// that an operator can tell it apart in pg_stat_activity.
    private func connectToPrimary() async throws -> PostgresConnection {
        var hosts = database.configuration.hosts
        if let primary = database.primaryHost, let index = hosts.firstIndex(of: primary) {
            hosts.insert(hosts.remove(at: index), at: 0)
        }
        var problems: [String] = []
        for host in hosts {
            do {
                var configuration = try database.connectionConfiguration(host)
                configuration.options.additionalStartupParameters = database.startupParameters.map { name, value in
                    (name, name == "application_name" ? "valised-listen" : value)
                }
                let connection = try await PostgresConnection.connect(
                    on: database.group.any(), configuration: configuration, id: 1, logger: logger)
                var inRecovery = true
                do {
                    let rows = try await connection.rows("SELECT pg_is_in_recovery(), pg_backend_pid()", logger: logger)
                    for try await (recovery, process) in rows.decode((Bool, Int32).self) {
                        inRecovery = recovery
                        state.withLockedValue { $0.backendProcess = recovery ? nil : process }
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                if !inRecovery { return connection }
                try? await connection.close()
                problems.append("\(host) is a standby")
            } catch {
                problems.append("\(host): \(PostgresDatabase.words(error))")
            }
        }
        throw StoreError(.unavailable, "no PostgreSQL primary to LISTEN on (\(problems.joined(separator: "; ")))")
    }
}
#endif
