#if Postgres
import Dispatch
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
public import PostgresNIO
import ValiseCrypto
public import ValiseStore

/// The connection to the relay's PostgreSQL database, for stores whose methods are
/// synchronous (called from the group-commit thread and the relay's thread pool).
///
/// - The primary is found by trying the configured hosts in order and taking the first where
///   `pg_is_in_recovery()` is false (postgres-nio has no multi-host connection strings). A
///   failure that means the primary is gone (the connection lost, the server shutting down,
///   a read-only transaction after a failover) drops the pool, and the next call looks again.
/// - Queries go through a `PostgresClient` (postgres-nio's pool), whose run loop and every
///   query task run on this database's own event loops (a task executor preference), never
///   on Swift's cooperative pool: a caller blocked on the answer can therefore never starve
///   the work it waits for, however many callers block.
public final class PostgresDatabase: Sendable {
    public let configuration: PostgresStoreConfiguration
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let executor: EventLoopTaskExecutor
    private let state = NIOLockedValueBox(State())

    private struct State {
        var current: Primary?
        var generation = 0
        /// After a failed search, calls fail at once until then (no storm of connects).
        var quietUntil: NIODeadline?
        var closed = false
    }

    /// The pool on the primary found, and the task that runs it.
    private struct Primary {
        let host: PostgresStoreConfiguration.Host
        let client: PostgresClient
        let run: Task<Void, Never>
        let generation: Int
    }

    public init(configuration: PostgresStoreConfiguration, logger: Logger) throws(StoreError) {
        if let problem = configuration.problem { throw StoreError(.failure, problem) }
        self.configuration = configuration
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        self.executor = EventLoopTaskExecutor(group: group)
    }

    deinit {
        close()
    }

    /// Stops the pool; later calls fail as unavailable.
    public func close() {
        let primary = state.withLockedValue { state -> Primary? in
            state.closed = true
            defer { state.current = nil }
            return state.current
        }
        primary?.run.cancel()
        // The loops go only once the pool has closed its connections (they need the loops to
        // do it), and never with syncShutdownGracefully: the last reference may go on a loop.
        let (group, run, executor) = (self.group, primary?.run, self.executor)
        Task {
            await run?.value
            executor.close()
            try? await group.shutdownGracefully()
        }
    }

    /// The host in use, if one was found.
    public var primaryHost: PostgresStoreConfiguration.Host? { state.withLockedValue { $0.current?.host } }

    // MARK: Running work

    /// Runs `body` with a pooled connection of the primary, blocking the calling thread
    /// (never an event loop) until it is done. Errors become `StoreError`: unavailable when the
    /// database cannot be reached (the primary is looked for again next time).
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) throws(StoreError) -> T {
        let primary = try currentPrimary()
        do {
            return try blocking { try await primary.client.withConnection { connection in try await body(connection) } }
        } catch {
            throw failed(error, primary: primary)
        }
    }

    /// As `withConnection`, in one transaction (committed when `body` returns, rolled back
    /// when it throws).
    public func withTransaction<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) throws(StoreError) -> T {
        let primary = try currentPrimary()
        let logger = self.logger
        do {
            return try blocking { try await primary.client.withTransaction(logger: logger) { connection in try await body(connection) } }
        } catch {
            throw failed(error, primary: primary)
        }
    }

    /// Runs async work on this database's event loops and waits for it.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        precondition(!group.any().inEventLoop, "a PostgreSQL store was called on its own event loop")
        let result = NIOLockedValueBox<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            result.withLockedValue { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.withLockedValue { $0! }.get()
    }

    // MARK: Finding the primary

    private func currentPrimary() throws(StoreError) -> Primary {
        let (existing, quiet, closed) = state.withLockedValue { ($0.current, $0.quietUntil, $0.closed) }
        if closed { throw StoreError(.unavailable, "the PostgreSQL store is closed") }
        if let existing { return existing }
        if let quiet, quiet > .now() {
            throw StoreError(.unavailable, "no PostgreSQL primary is reachable (\(hostList)); trying again shortly")
        }
        let found: PostgresStoreConfiguration.Host
        do {
            found = try blocking { [self] in try await findPrimary() }
        } catch let error as StoreError {
            state.withLockedValue { $0.quietUntil = .now() + .seconds(1) }
            throw error
        } catch {
            state.withLockedValue { $0.quietUntil = .now() + .seconds(1) }
            throw StoreError(.unavailable, "no PostgreSQL primary is reachable (\(hostList))")
        }
        return state.withLockedValue { state in
            if let current = state.current { return current }  // another caller won
            let client = PostgresClient(configuration: clientConfiguration(found), eventLoopGroup: group, backgroundLogger: logger)
            let run = Task(executorPreference: executor) { await client.run() }
            state.generation += 1
            let primary = Primary(host: found, client: client, run: run, generation: state.generation)
            state.current = primary
            state.quietUntil = nil
            logger.info("PostgreSQL primary found", metadata: ["postgres.host": "\(found)"])
            return primary
        }
    }

    private var hostList: String { configuration.hosts.map(\.description).joined(separator: ", ") }

    /// The first configured host that accepts a connection and is not in recovery.
    private func findPrimary() async throws -> PostgresStoreConfiguration.Host {
        var seen: [String] = []
        for host in configuration.hosts {
            do {
                let connection = try await PostgresConnection.connect(
                    on: group.any(), configuration: connectionConfiguration(host), id: 0, logger: logger)
                defer { Task(executorPreference: executor) { try? await connection.close() } }
                let rows = try await connection.rows("SELECT pg_is_in_recovery()", logger: logger)
                var inRecovery = true
                for try await value in rows.decode(Bool.self) { inRecovery = value }
                if !inRecovery { return host }
                seen.append("\(host) is a standby")
            } catch {
                seen.append("\(host): \(Self.words(error))")
            }
        }
        throw StoreError(.unavailable, "no PostgreSQL primary among the configured hosts (\(seen.joined(separator: "; ")))")
    }

    /// Turns an error into a StoreError; drops the pool when the primary may be gone.
    private func failed(_ error: any Error, primary: Primary) -> StoreError {
        // postgres-nio wraps whatever ended a transaction (the body's own StoreError, a
        // server error, a lost connection at COMMIT): judge that error, not the wrapper.
        if let wrapped = error as? PostgresTransactionError,
           let cause = wrapped.closureError ?? wrapped.commitError ?? wrapped.beginError {
            return failed(cause, primary: primary)
        }
        if let error = error as? StoreError { return error }
        if Self.primaryLost(error) {
            let dropped = state.withLockedValue { state -> Primary? in
                guard state.current?.generation == primary.generation else { return nil }
                defer { state.current = nil }
                return state.current
            }
            if let dropped {
                logger.warning("lost the PostgreSQL primary; looking for it again", metadata: [
                    "postgres.host": "\(dropped.host)", "error": "\(Self.words(error))",
                ])
                dropped.run.cancel()
            }
            return StoreError(.unavailable, "the PostgreSQL database is unavailable (\(Self.words(error)))")
        }
        return StoreError(.failure, "PostgreSQL: \(Self.words(error))")
    }

    /// Errors after which the pool's host may no longer be the primary: everything but an
    /// error the server gave to a query (a constraint, a syntax error) or a row that did
    /// not decode. The pool's own errors (its circuit breaker after failed connects above
    /// all) mean it cannot reach its host; looking for the primary again is then what finds
    /// a promoted standby.
    static func primaryLost(_ error: any Error) -> Bool {
        if error is StoreError || error is PostgresDecodingError { return false }
        guard let error = error as? PSQLError else { return true }
        switch error.code {
        case .server:
            // 25006: read-only transaction (a demoted primary); 57P01-57P03: the server is
            // shutting down or starting; 08xxx: connection exceptions; 53100: disk full is
            // not a lost primary (the store reports storage full).
            let state = error.serverInfo?[.sqlState] ?? ""
            return state == "25006" || state.hasPrefix("57P") || state.hasPrefix("08")
        case .unexpectedBackendMessage, .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError,
             .invalidCommandTag, .tooManyParameters:
            return false
        default:
            return true
        }
    }

    /// An error in words for logs and StoreError messages: the server's own message and
    /// SQLSTATE, never the query's bindings.
    public static func words(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        if let error = error as? StoreError { return error.message }
        return "\(error)"
    }

    // MARK: Configurations

    func connectionConfiguration(_ host: PostgresStoreConfiguration.Host) throws -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: host.name, port: host.port, username: self.configuration.user, password: passwordString(),
            database: self.configuration.database, tls: try connectionTLS())
        configuration.options.connectTimeout = .seconds(Int64(self.configuration.connectTimeoutSeconds))
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    private func clientConfiguration(_ host: PostgresStoreConfiguration.Host) -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host.name, port: host.port, username: self.configuration.user, password: passwordString(),
            database: self.configuration.database, tls: clientTLS())
        configuration.options.maximumConnections = self.configuration.pool
        configuration.options.minimumConnections = 1
        configuration.options.connectTimeout = .seconds(self.configuration.connectTimeoutSeconds)
        configuration.options.additionalStartupParameters = startupParameters
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(10))
        return configuration
    }

    /// Every connection works in the store's schema; `application_name` lets an operator
    /// tell valised's connections apart in pg_stat_activity.
    var startupParameters: [(String, String)] {
        [("search_path", configuration.schema), ("application_name", "valised"), ("synchronous_commit", "on")]
    }

    private func passwordString() -> String? {
        configuration.password.map { secret in secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }
    }

    private func tlsConfiguration() -> TLSConfiguration? {
        switch configuration.tls {
        case .disable:
            return nil
        case .require:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            return tls
        case .verifyFull:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .fullVerification
            if let caFile = configuration.caFile { tls.trustRoots = .file(caFile) }
            return tls
        }
    }

    private func clientTLS() -> PostgresClient.Configuration.TLS {
        tlsConfiguration().map { .require($0) } ?? .disable
    }

    private func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        guard let tls = tlsConfiguration() else { return .disable }
        return .require(try NIOSSLContext(configuration: tls))
    }
}

/// Runs tasks' jobs on an event loop group's threads (SE-0417 task executor), so that the
/// database's async work never needs a thread of Swift's cooperative pool.
final class EventLoopTaskExecutor: TaskExecutor {
    private let group: any EventLoopGroup
    private let closed = NIOLockedValueBox(false)

    init(group: any EventLoopGroup) {
        self.group = group
    }

    /// From now on jobs run on Dispatch's global queue: the loops are about to stop, and the
    /// last steps of tasks that preferred this executor (a closing connection, a pool's
    /// run loop ending) must still run rather than be dropped by a loop that has shut down.
    func close() {
        closed.withLockedValue { $0 = true }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if closed.withLockedValue({ $0 }) {
            DispatchQueue.global().async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        } else {
            group.any().execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        }
    }
}
#endif
