import Foundation
import Logging
import ValisePostgres
import ValiseRelay
import ValiseStore

/// The queue `valised run` serves: SQLite in the relay's directory, or PostgreSQL shared with
/// the relay's other nodes (`store.kind: postgres`).
struct OpenedStore {
    let store: any EnvelopeStore & PrekeyStore
    /// Attachment blobs, apart from envelopes: blobs.sqlite beside queue.sqlite, or the
    /// PostgreSQL store's blob tables (nil: the relay takes no attachments).
    var blobs: (any BlobStore)?
    /// Closes the PostgreSQL pool and LISTEN connection at shutdown (SQLite closes with the process).
    let close: @Sendable () -> Void

    /// Opens the store (`postgres`: from `StoreSettings.postgres`) and logs "store opened"; `fail` ends the process with the words.
    static func open(
        settings: RelaySettings, postgres: PostgresStoreConfiguration?, logger: Logger, fail: (String) -> Never
    ) -> OpenedStore {
        let queue = settings.relay.queue
        #if Postgres
        if let postgres {
            do throws(StoreError) {
                // Runs the schema's migrations under an advisory lock, so two nodes starting together do not race.
                let store = try PostgresEnvelopeStore(configuration: postgres, limits: queue.limits, maximumBytes: queue.maximumStoreBytes, logger: logger)
                let statistics = try store.statistics(now: Clock.now())
                // The primary's host and the database, never the user's password.
                logger.info("store opened", metadata: [
                    "store": "postgres", "store.primary": "\(store.database.primaryHost.map { "\($0)" } ?? "?")",
                    "store.database": "\(postgres.database)", "store.schema": "\(postgres.schema)", "queue.envelopes": "\(statistics.count)",
                    "queue.bytes": "\(statistics.bytes)", "queue.mailboxes": "\(statistics.mailboxes)",
                ])
                // The blob tables on the same database and pool (migration 2, run above).
                let blobs = PostgresBlobStore(queue: store)
                let blobStatistics = try blobs.blobStatistics(now: Clock.now())
                logger.info("blob store opened", metadata: [
                    "store": "postgres", "blobs.count": "\(blobStatistics.count)", "blobs.bytes": "\(blobStatistics.bytes)",
                    "blobs.forwardsWaiting": "\(blobStatistics.forwardsWaiting)",
                ])
                return OpenedStore(store: store, blobs: blobs, close: { store.close() })
            } catch {
                fail(error.message)
            }
        }
        #else
        if postgres != nil {
            fail(PostgresSupport.notBuiltMessage)
        }
        #endif
        do throws(StoreError) {
            let store = try SQLiteEnvelopeStore(
                path: settings.relay.storePath, limits: queue.limits, maximumBytes: queue.maximumStoreBytes,
                reserveBytes: queue.reserveBytes, durability: queue.durability)
            if store.durability == .os {
                logger.warning("""
                    durability is 'os': an accepted envelope survives a crash of valised but not of the operating system \
                    or a power cut (set durability: full to fsync every commit)
                    """)
            }
            let statistics = try store.statistics(now: Clock.now())
            logger.info("store opened", metadata: [
                "store": "\(store.path)", "queue.envelopes": "\(statistics.count)", "queue.bytes": "\(statistics.bytes)",
                "queue.mailboxes": "\(statistics.mailboxes)", "queue.durability": "\(store.durability.rawValue)",
                "queue.spaceReserve": "\(store.spaceReserveHeld ? "held" : "missing: the disk is full, new envelopes are refused until there is room")",
            ])
            let blobs = try SQLiteBlobStore(path: settings.relay.blobStorePath, durability: queue.durability)
            let blobStatistics = try blobs.blobStatistics(now: Clock.now())
            logger.info("blob store opened", metadata: [
                "store": "\(blobs.path)", "blobs.count": "\(blobStatistics.count)", "blobs.bytes": "\(blobStatistics.bytes)",
                "blobs.forwardsWaiting": "\(blobStatistics.forwardsWaiting)",
            ])
            return OpenedStore(store: store, blobs: blobs, close: {})
        } catch {
            fail(error.message)
        }
    }
}
