import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ValiseStore

/// This node's part in a relay whose store several nodes share (PostgreSQL, docs/OPERATIONS.md):
/// lease holders for its connections and links, and whether the store can be reached. While
/// it cannot, the node serves nobody: it closes every admitted connection with UNAVAILABLE
/// and refuses new ones the same way after their handshake, so that clients move to the
/// relay's next address (another node), until the store answers again.
///
/// The embedded SQLite store has one node: the relay makes no `SharedNode` for it.
final class SharedNode: Sendable {
    let queue: any SharedQueue
    /// The directory log the nodes share (nil for a store that shares only its queue).
    let log: (any SharedDirectoryLog)?
    private let registry: ConnectionRegistry
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let state = NIOLockedValueBox((connections: UInt64(0), available: true, open: Set<UInt64>()))

    /// What every client hears while the node cannot reach its store.
    static let unavailable = RelayError(
        .unavailable, code: "unavailable", message: "this relay node cannot reach its store; try the relay's next address")

    /// A node of a shared store, or nil when `store` is not shared (SQLite).
    init?(store: any EnvelopeStore, registry: ConnectionRegistry, threadPool: NIOThreadPool, logger: Logger) {
        guard let queue = store as? any SharedQueue else { return nil }
        self.queue = queue
        self.log = store as? any SharedDirectoryLog
        self.registry = registry
        self.threadPool = threadPool
        self.logger = logger
    }

    /// A holder for one new connection or link of this node: its leases are its own.
    func newHolder() -> LeaseHolder {
        LeaseHolder(node: queue.node, connection: state.withLockedValue { state in
            state.connections += 1
            state.open.insert(state.connections)
            return state.connections
        })
    }

    var isAvailable: Bool { state.withLockedValue { $0.available } }

    /// The store cannot be reached: every admitted connection (devices, admins, relay links
    /// in) is told UNAVAILABLE and closed, once, when the node learns it.
    func lost(_ reason: String) {
        let wasAvailable = state.withLockedValue { state in
            defer { state.available = false }
            return state.available
        }
        guard wasAvailable else { return }
        logger.error("lost the shared store: closing every connection with UNAVAILABLE until it answers again", metadata: ["error": "\(reason)"])
        registry.dropAll(reason: Self.unavailable)
    }

    /// The store answers again (its announcements reconnected, or a probe succeeded).
    func regained() {
        let wasAvailable = state.withLockedValue { state in
            defer { state.available = true }
            return state.available
        }
        if !wasAvailable { logger.notice("the shared store answers again: serving") }
    }

    /// Whether `error` says the store cannot be reached; if so, the node stops serving.
    @discardableResult
    func check(_ error: any Error) -> Bool {
        guard let error = error as? StoreError, error.kind == .unavailable else { return false }
        lost(error.message)
        return true
    }

    /// Gives back a closed connection's or link's leases, off the event loop. A failure
    /// costs only time: the leases expire after `SharedQueueLease.seconds`.
    func release(_ holder: LeaseHolder) {
        // No longer renewed, whether or not the release below reaches the store.
        _ = state.withLockedValue { $0.open.remove(holder.connection) }
        let (queue, logger) = (self.queue, self.logger)
        threadPool.submit { state in
            guard case .active = state else { return }
            do throws(StoreError) {
                try queue.releaseLeases(of: holder)
            } catch {
                logger.debug("could not release leases; they expire", metadata: ["error": "\(error.message)"])
            }
        }
    }

    /// Extends this node's leases (every `SharedQueueLease.renewSeconds`); while the store is
    /// lost, this is also the probe that finds it back.
    func renew(now: UInt64) {
        threadPool.submit { [self] state in
            guard case .active = state else { return }
            do throws(StoreError) {
                try queue.renewLeases(of: self.state.withLockedValue { Array($0.open) }, now: now)
                regained()
            } catch {
                if !check(error) { logger.warning("could not renew leases", metadata: ["error": "\(error.message)"]) }
            }
        }
    }
}
