import ArgumentParser
import Foundation
import Logging
import ValisePostgres
import ValiseRelay
import ValiseStore

/// The queue's figures for `valised status`, from the store the relay's configuration names:
/// queue.sqlite in the directory, or PostgreSQL (`--config` with `store.kind: postgres`).
struct StatusQueue {
    var statistics: QueueStatistics
    var backlog: [String: ForwardingBacklog]
    var mailboxBacklog: [MailboxBacklog]
    /// "postgres PRIMARY-HOST/DATABASE" for PostgreSQL; nil for SQLite (the disk line shows the file's size).
    var postgres: String?
    /// The store's tables and indexes in PostgreSQL, in bytes.
    var postgresBytes: Int?
    /// Attachment blobs held (nil: no blob store yet).
    var blobs: BlobStatistics? = nil

    static func read(directory: String, config: String?, now: UInt64) throws -> StatusQueue {
        let store: RelayConfiguration.Store
        do {
            // As run reads them (the environment too), so that status finds the same store.
            store = try RelaySettings.load(flags: ["directory": directory], configFile: config).relay.store
        } catch {
            throw Valised.failure("configuration: \(error)", status: 1)
        }
        let postgres: PostgresStoreConfiguration?
        do {
            postgres = try StoreSettings.postgres(store, readPassword: true)
        } catch {
            throw Valised.failure("configuration: \(error)", status: 1)
        }
        #if Postgres
        if let postgres {
            do throws(StoreError) {
                let store = try PostgresEnvelopeStore(configuration: postgres, logger: Logger(label: "valised-status"))
                defer { store.close() }
                let primary = store.database.primaryHost.map { "\($0)" } ?? "?"
                return StatusQueue(
                    statistics: try store.statistics(now: now), backlog: try store.forwardingBacklog(now: now),
                    mailboxBacklog: try store.mailboxBacklog(now: now), postgres: "postgres \(primary)/\(postgres.database)",
                    postgresBytes: try store.storeBytes(), blobs: try PostgresBlobStore(queue: store).blobStatistics(now: now))
            } catch {
                throw Valised.failure(error.message, status: 1)
            }
        }
        #else
        if postgres != nil {
            throw Valised.failure(PostgresSupport.notBuiltMessage, status: 1)
        }
        #endif
        let path = directory + "/queue.sqlite"
        guard FileManager.default.fileExists(atPath: path) else {
            throw Valised.failure("no queue at \(path) (has the relay run yet?)", status: 4)
        }
        do {
            let store = try SQLiteEnvelopeStore(path: path, reserveBytes: 0, create: false)
            let blobPath = directory + "/blobs.sqlite"
            let blobs = FileManager.default.fileExists(atPath: blobPath)
                ? try SQLiteBlobStore(path: blobPath, create: false).blobStatistics(now: now) : nil
            return StatusQueue(
                statistics: try store.statistics(now: now), backlog: try store.forwardingBacklog(now: now),
                mailboxBacklog: try store.mailboxBacklog(now: now), postgres: nil, postgresBytes: nil, blobs: blobs)
        } catch {
            throw Valised.failure(error.message, status: 1)
        }
    }
}

extension Valised {
    /// Writes "valised: error: MESSAGE" and gives the exit status to throw.
    static func failure(_ message: String, status: Int32) -> ExitCode {
        FileHandle.standardError.write(Data("valised: error: \(message)\n".utf8))
        return ExitCode(status)
    }
}
