import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// This relay's links to the other relays of the organisation (docs/PROTOCOL.md, "Relay
/// links"): one outgoing link per relay its verified directory lists, each pushing the
/// forwarding queue for that relay, and the directory, on its own connection. All link
/// state lives on one event loop (`loop`); the methods any thread may call hop onto it.
final class Federation: @unchecked Sendable {
    struct Dependencies: Sendable {
        let keys: RelayKeys
        let directory: RelayDirectory
        let store: any EnvelopeStore
        let writer: GroupCommitWriter
        /// Hands the writer's completions to the federation's loop, one task per commit.
        let handoff: LoopHandoff
        let publisher: DirectoryPublisher
        let threadPool: NIOThreadPool
        /// Set when several nodes share the store: links lease what they forward.
        let node: SharedNode?
        let counters: LimitCounters
        let limits: RelayConfiguration.Limits
        let clock: @Sendable () -> UInt64
        /// Called (on the publisher's thread) after entries from a link were stored: the same
        /// consequences as an admin's publish (connections dropped, queues purged).
        let onPublished: @Sendable (RelayDirectory.Published) -> Void
        /// The relay's blob store, which links forward blobs from and take them into (nil:
        /// this relay keeps no blobs, and its links carry none).
        var blobs: LinkBlobs? = nil
    }

    let loop: any EventLoop
    let dependencies: Dependencies
    let logger: Logger
    let group: any EventLoopGroup
    /// On `loop` only.
    fileprivate var links: [String: OutgoingLink] = [:]
    private var homes: [MemberName: String] = [:]
    private var seenCount = 0
    private var ticks: RepeatedTask?
    private var stopped = false
    private let published = NIOLockedValueBox<[LinkStatusFile.Link]>([])

    init(dependencies: Dependencies, group: any EventLoopGroup, logger: Logger) {
        self.dependencies = dependencies
        self.group = group
        self.loop = group.next()
        self.logger = logger
    }

    /// Opens the links the directory calls for and starts the once-a-second tick.
    func start() {
        loop.execute { [self] in
            let snapshot = dependencies.directory.snapshot
            homes = Self.homes(snapshot)
            seenCount = snapshot.count
            reconcile(snapshot)
            ticks = loop.scheduleRepeatedTask(initialDelay: .seconds(Int64(1)), delay: .seconds(Int64(1))) { [self] _ in tick() }
        }
    }

    /// Closes every link; envelopes in flight stay in the forwarding queue.
    func stop() async {
        try? await loop.submit { [self] in
            stopped = true
            ticks?.cancel()
            for link in links.values { link.stop() }
            links.removeAll()
        }.get()
    }

    /// Envelopes for `destination` were committed to the forwarding queue.
    func wake(destination: String) {
        loop.execute { [self] in links[destination]?.wake() }
    }

    /// `relay` opened a link to this relay and proved its key: this relay's own link to it
    /// stops waiting out its backoff.
    func peerReachable(_ relay: String) {
        loop.execute { [self] in links[relay]?.peerReachable() }
    }

    /// Blobs with forwards to these relays completed here (or a forward was given back):
    /// their links look for blob work.
    func wakeBlobs(destinations: some Sequence<String> & Sendable) {
        loop.execute { [self] in for destination in destinations { links[destination]?.wakeBlobs() } }
    }

    /// This envelope was just committed to the forwarding queue for its destination. With a
    /// shared store the link looks in the store instead, where it leases the envelope, so
    /// that a link of another node to the same relay cannot send it at the same time.
    func offer(_ envelope: OutgoingEnvelope) {
        guard dependencies.node == nil else { return wake(destination: envelope.destination) }
        loop.execute { [self] in links[envelope.destination]?.offer(envelope) }
    }

    /// Every link looks in the forwarding queue again (another node of a shared store may
    /// have committed to it, and its announcement may have been lost).
    func wakeAll() {
        loop.execute { [self] in for link in links.values { link.wake() } }
    }

    /// The verified directory changed (a publish, or entries from a link): mail follows
    /// members whose home moved, links open or close with the relays listed, and every link
    /// passes the new entries on.
    func directoryChanged() {
        loop.execute { [self] in
            let snapshot = dependencies.directory.snapshot
            guard snapshot.count != seenCount, !stopped else { return }
            seenCount = snapshot.count
            reroute(snapshot)
            reconcile(snapshot)
            for link in links.values { link.directoryChanged(snapshot) }
        }
    }

    /// Each link's state, for the status file.
    var status: [LinkStatusFile.Link] { published.withLockedValue { $0 } }

    // MARK: On the loop

    private func tick() {
        let now = dependencies.clock()
        for link in links.values { link.tick(now: now) }
        publishStatus()
    }

    /// One link for every relay listed (never to itself); links to relays no longer listed close.
    private func reconcile(_ snapshot: RelayDirectory.Snapshot) {
        guard let own = snapshot.relayName, !stopped else { return }
        let listed = snapshot.state.relays.filter { $0.key != own }
        for (name, link) in links where listed[name]?.noiseKey != link.record.noiseKey {
            logger.info("relay link closed: the relay is no longer listed", metadata: ["link.relay": "\(name)"])
            link.stop()
            links[name] = nil
        }
        for (name, record) in listed {
            if let link = links[name] {
                link.record = record
                continue
            }
            let link = OutgoingLink(localName: own, record: record, federation: self)
            links[name] = link
            link.connect()
        }
    }

    /// Members whose home relay changed: what this relay holds for them moves to the queue
    /// of their new home (or into the local mailbox, if that is here).
    private func reroute(_ snapshot: RelayDirectory.Snapshot) {
        let now = Self.homes(snapshot)
        for (member, home) in now where homes[member] != nil && homes[member] != home {
            move(Mailbox(member.value), to: Self.destination(of: member, in: snapshot))
        }
        homes = now
    }

    /// Moves what this relay holds for `mailbox` to the forwarding queue of `destination`
    /// (nil: the local mailbox), and wakes that link.
    private func move(_ mailbox: Mailbox, to destination: String?) {
        dependencies.writer.reroute(mailbox: mailbox, to: destination) { [self] result in
            switch result {
            case .success(let count) where count > 0:
                logger.info("mail follows a member to a new home relay", metadata: [
                    "member.home": "\(destination ?? "this relay")", "envelopes": "\(count)"])
                if let destination { wake(destination: destination) }
            case .success: break
            case .failure(let error):
                logger.error("could not move a moved member's mail", metadata: ["error": "\(error.message)"])
            }
        }
    }

    static func homes(_ snapshot: RelayDirectory.Snapshot) -> [MemberName: String] {
        var homes: [MemberName: String] = [:]
        for member in snapshot.state.members.values where member.isActive {
            if let home = snapshot.state.homeRelay(of: member.name) { homes[member.name] = home.name }
        }
        return homes
    }

    /// Where to send an envelope for `recipient`: nil for this relay's own mailbox, else the
    /// name of the recipient's home relay.
    static func destination(of recipient: MemberName, in snapshot: RelayDirectory.Snapshot) -> String? {
        guard let own = snapshot.relayName, let home = snapshot.state.homeRelay(of: recipient), home.name != own else { return nil }
        return home.name
    }

    /// Re-routes one envelope's recipient after a NOT_HOME, if our own directory agrees that
    /// the home is elsewhere; otherwise the envelope waits out its deferral.
    func notHome(mailbox: Mailbox, from relay: String) {
        loop.preconditionInEventLoop()
        let snapshot = dependencies.directory.snapshot
        guard let member = try? MemberName(mailbox.name), let home = snapshot.state.homeRelay(of: member), home.name != relay else { return }
        move(mailbox, to: Self.destination(of: member, in: snapshot))
    }

    /// Each link's state as `status` gives it (for `links.json`), now.
    func publishStatus() {
        published.withLockedValue { $0 = links.values.map(\.status).sorted { $0.relay < $1.relay } }
    }
}

extension Federation {
    /// Passes a device's request to `relay` over this relay's link to it; the peer's
    /// answer, or a failure when the link is not up or ends first.
    func proxy(to relay: String, _ body: LinkLinkRequest.OneOf_Body) -> EventLoopFuture<LinkLinkReply> {
        loop.flatSubmit { [self] in
            guard let link = links[relay] else {
                return loop.makeFailedFuture(RelayError(.internal, code: "link-down", message: "this relay has no link to relay \(relay)"))
            }
            return link.proxy(body)
        }
    }
}
