import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ValiseCrypto
import ValiseStore

/// Several nodes of one relay on one shared store (PostgreSQL): what another node commits
/// reaches this node's connections and links, and the directory they all serve is one.
extension RelayServer {
    /// What `startSharing` set going; `stop` ends it.
    struct Sharing {
        let listener: Task<Void, Never>
        let poll: RepeatedTask
        let renewal: RepeatedTask

        func stop() {
            listener.cancel()
            poll.cancel()
            renewal.cancel()
        }
    }

    /// The most directory entries one look at the shared log reads: the rest on the next.
    static let sharedDirectoryPage = 256
    static let sharedDirectoryPagesPerLook = 16

    /// Follows the store's announcements, polls in case one was lost, renews this node's
    /// leases, and brings this node's directory and the shared log level.
    func startSharing(_ node: SharedNode, loop: any EventLoop, federation: Federation, publisher: DirectoryPublisher) -> Sharing {
        let look: @Sendable () -> Void = { [self] in lookAtSharedDirectory(node, publisher: publisher) }
        let everything: @Sendable () -> Void = { [mailboxes] in
            mailboxes.wakeAll()
            federation.wakeAll()
            look()
        }
        let listener = Task { [mailboxes, logger] in
            for await change in node.queue.changes() {
                switch change {
                case .mailboxes(let touched):
                    for mailbox in touched { mailboxes.wake(mailbox) }
                case .destinations(let relays):
                    for relay in relays { federation.wake(destination: relay) }
                    // Or a blob completed on another node with forwards to these relays
                    // (PostgresBlobStore announces those with the same line).
                    federation.blobsWaiting(for: Set(relays))
                case .directory:
                    look()
                case .everything:
                    node.regained()
                    everything()
                case .unavailable:
                    node.lost("the store's announcements stopped")
                }
            }
            logger.debug("the shared store's announcements ended")
        }
        // A lost announcement costs at most this long, never a message. While the store is
        // lost the poll is the probe that finds it back.
        let poll = loop.scheduleRepeatedTask(
            initialDelay: .seconds(Int64(SharedQueueLease.pollSeconds)), delay: .seconds(Int64(SharedQueueLease.pollSeconds))
        ) { _ in
            if node.isAvailable { everything() } else { node.renew(now: WallClock.seconds()) }
        }
        let renewal = loop.scheduleRepeatedTask(
            initialDelay: .seconds(Int64(SharedQueueLease.renewSeconds)), delay: .seconds(Int64(SharedQueueLease.renewSeconds))
        ) { _ in
            node.renew(now: WallClock.seconds())
        }
        look()
        return Sharing(listener: listener, poll: poll, renewal: renewal)
    }

    /// Entries other nodes stored in the shared log are verified here as entries from a
    /// relay link are (the publisher's path: signatures, chain, admins in force) and then
    /// take effect (revoked keys' connections dropped at once); entries that do not verify
    /// are logged and ignored, never applied. A shared log shorter than this node's
    /// directory (a new database, or an append that failed) gets this node's entries.
    func lookAtSharedDirectory(_ node: SharedNode, publisher: DirectoryPublisher) {
        guard let log = node.log else { return }
        let (directory, logger, key, sharedContext) = (directory, logger, keys.noise.publicKey, sharedContext)
        NIOThreadPool.singleton.submit { state in
            guard case .active = state else { return }
            let snapshot = directory.snapshot
            var entries: [[UInt8]] = []
            do throws(StoreError) {
                for _ in 0..<Self.sharedDirectoryPagesPerLook {
                    let page = try log.directoryEntries(from: snapshot.count + entries.count, limit: Self.sharedDirectoryPage)
                    entries += page
                    if page.count < Self.sharedDirectoryPage { break }
                }
                if entries.isEmpty, snapshot.count > 0, try log.directoryEntries(from: snapshot.count - 1, limit: 1).isEmpty {
                    let added = try log.appendDirectoryEntries(snapshot.encodedEntries, from: 0)
                    if added > 0 { logger.info("gave the shared directory log this node's entries", metadata: ["directory.entries": "\(added)"]) }
                }
            } catch {
                if !node.check(error) { logger.warning("could not read the shared directory log", metadata: ["error": "\(error.message)"]) }
                return
            }
            guard !entries.isEmpty else { return }
            publisher.submit(from: key, entries: entries.map { Data($0) }, checkpoint: Data()) { result in
                switch result {
                case .success(let published):
                    sharedContext.withLockedValue { $0 }?.applyPublished(published)
                    logger.info("applied directory entries another node stored", metadata: ["directory.count": "\(published.count)"])
                case .failure(let error):
                    logger.warning("ignored directory entries in the shared log that do not verify", metadata: ["error": "\(error.message)"])
                }
            }
        }
    }

    /// How a publish on this node reaches the others: its new entries go to the shared log
    /// before the publish is answered (the store announces them to every node).
    static func sharing(node: SharedNode, logger: Logger) -> (@Sendable (_ entries: [[UInt8]], _ start: Int) -> Void)? {
        guard let log = node.log else { return nil }
        return { entries, start in
            do throws(StoreError) {
                _ = try log.appendDirectoryEntries(entries, from: start)
            } catch {
                // Stored here, not yet there: the next look at the shared log (a reconnect,
                // the poll) appends what it lacks.
                if !node.check(error) { logger.warning("could not add entries to the shared directory log", metadata: ["error": "\(error.message)"]) }
            }
        }
    }
}
