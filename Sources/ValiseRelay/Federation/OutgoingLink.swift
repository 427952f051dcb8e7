import Foundation
import Logging
import NIOCore
import NIOPosix
import ValiseCrypto
import ValiseDirectory
import ValiseNetwork
import ValiseStore
import ValiseWire

/// The I/O shell of one outgoing relay link: connects (trying the relay's addresses in
/// order), runs the KKhfs handshake (`LinkInitiatorState`) and the link protocol
/// (`LinkSession`), carries out the session's actions against the store and the directory,
/// and reconnects with backoff when the connection ends. Everything runs on the
/// federation's event loop.
final class OutgoingLink {
    enum Phase: String {
        case waiting, connecting, handshaking, up, stopped
    }

    let localName: String
    var record: RelayRecord
    unowned let federation: Federation
    private var phase = Phase.waiting
    private var channel: (any Channel)?
    private var transport: LinkInitiatorState?
    private var session: LinkSession?
    private var backoff = LinkBackoff()
    private var retry: Scheduled<Void>?
    private var addressIndex = 0
    private var lastSuccess: UInt64?
    private var lastError: String?
    private(set) var logger: Logger
    /// Writes wait for one flush, and answered Forwards for one completion commit, at the end
    /// of this event-loop tick: a burst costs one system call and one store job, not one each.
    private var flushScheduled = false
    private var completions: [ForwardCompletion] = []
    /// Proxied requests waiting for the peer's answer.
    private var proxies: [UInt64: EventLoopPromise<LinkLinkReply>] = [:]
    private var nextToken: UInt64 = 1
    /// This connection's leases on the forwarding queue, when several nodes share the store.
    private var leaseHolder: LeaseHolder?

    init(localName: String, record: RelayRecord, federation: Federation) {
        self.localName = localName
        self.record = record
        self.federation = federation
        var logger = federation.logger
        logger[metadataKey: "link.relay"] = "\(record.name)"
        self.logger = logger
    }

    var name: String { record.name }
    var loop: any EventLoop { federation.loop }
    var dependencies: Federation.Dependencies { federation.dependencies }

    var status: LinkStatusFile.Link {
        LinkStatusFile.Link(
            relay: name, state: phase.rawValue, address: currentAddress, lastSuccess: lastSuccess, lastError: lastError,
            inFlight: session?.inFlight.count ?? 0)
    }

    private var currentAddress: String { record.addresses[addressIndex % max(record.addresses.count, 1)] }

    // MARK: Connection

    func connect() {
        guard phase != .stopped else { return }
        retry = nil
        setPhase(.connecting)
        let address = currentAddress
        guard let (host, port) = Self.split(address) else {
            failed("the address \(address) is not HOST:PORT")
            return
        }
        let keys = dependencies.keys
        let initial = LinkInitiatorState(
            localStatic: keys.noise, remoteStatic: record.noiseKey, maximumMessageLength: dependencies.limits.maximumMessageBytes)
        let loopBound = NIOLoopBound(self, eventLoop: loop)
        ClientBootstrap(group: loop)
            .connectTimeout(.seconds(Int64(10)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(Int64(90))))
                    try channel.pipeline.syncOperations.addHandler(OutgoingLinkHandler(link: loopBound))
                }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                let link = loopBound.value
                switch result {
                case .success(let channel):
                    guard link.phase == .connecting else {
                        channel.close(promise: nil)
                        return
                    }
                    link.channel = channel
                    link.setPhase(.handshaking)
                    var transport = initial
                    let actions = transport.start()
                    link.transport = transport
                    link.perform(actions)
                case .failure(let error):
                    link.failed(ConnectionFailure(error, host: host, port: port).sentence)
                }
            }
    }

    /// The peer relay opened a link to this relay and proved its key, so it is up again: a
    /// link waiting out its backoff connects now (otherwise mail for a relay that restarted
    /// could wait up to `LinkBackoff.maximumSeconds`), and the backoff starts over.
    func peerReachable() {
        backoff.peerReachable()
        guard phase == .waiting, retry != nil else { return }
        retry?.cancel()
        logger.info("relay link retried early: the peer relay connected to this one")
        connect()
    }

    func stop() {
        setPhase(.stopped)
        retry?.cancel()
        channel?.close(promise: nil)
        failProxies()
    }

    static func split(_ address: String) -> (String, Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    /// Bytes from the peer.
    func received(_ bytes: [UInt8]) {
        guard var transport else { return }
        let actions = transport.receive(bytes)
        self.transport = transport
        perform(actions)
    }

    /// The connection ended, for whatever reason.
    func closed() {
        guard channel != nil else { return }
        channel = nil
        transport = nil
        session = nil
        if let leaseHolder { dependencies.node?.release(leaseHolder) }
        leaseHolder = nil
        failProxies()
        if phase == .up || phase == .handshaking || phase == .connecting {
            failed(lastError ?? "the connection closed")
        }
    }

    private func failed(_ reason: String) {
        guard phase != .stopped else { return }
        lastError = reason
        channel?.close(promise: nil)
        let delay = backoff.failed(at: Double(dependencies.clock()), random: Double.random(in: 0..<1))
        // The next attempt tries the next address (several nodes of one relay).
        addressIndex += 1
        setPhase(.waiting, reason: reason)
        let loopBound = NIOLoopBound(self, eventLoop: loop)
        retry = loop.scheduleTask(in: .milliseconds(Int64(delay * 1000))) { loopBound.value.connect() }
    }

    private func setPhase(_ next: Phase, reason: String? = nil) {
        guard next != phase else { return }
        phase = next
        var metadata: Logger.Metadata = ["link.state": "\(next.rawValue)", "link.address": "\(currentAddress)"]
        if let reason { metadata["reason"] = "\(reason)" }
        // One line per state change (docs/OPERATIONS: the log shows each link's history).
        logger.info("relay link state", metadata: metadata)
        federation.publishStatus()
    }

    // MARK: Transport actions

    private func perform(_ actions: [LinkInitiatorState.Action]) {
        for action in actions {
            switch action {
            case .write(let bytes):
                guard let channel else { continue }
                channel.write(ByteBuffer(bytes: bytes), promise: nil)
                scheduleFlush()
            case .established:
                let now = dependencies.clock()
                var session = LinkSession(localName: localName, peerName: name)
                let actions = session.start(directory: dependencies.directory.snapshot, now: now)
                self.session = session
                run(actions)
            case .deliver(let message):
                guard let reply = try? LinkCodec.decodeReply(message) else {
                    lastError = "relay \(name) sent a message that does not decode"
                    channel?.close(promise: nil)
                    return
                }
                withSession { $0.receive(reply, directory: dependencies.directory.snapshot, now: dependencies.clock()) }
            case .close(let reason):
                lastError = "\(reason)"
                channel?.close(promise: nil)
            }
        }
    }

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: loop)
        loop.execute {
            let link = loopBound.value
            link.flushScheduled = false
            link.channel?.flush()
        }
    }

    private func send(_ request: LinkLinkRequest) {
        guard var transport else { return }
        let actions = transport.send(LinkCodec.encode(request))
        self.transport = transport
        perform(actions)
    }

    // MARK: Session actions

    func withSession(_ body: (inout LinkSession) -> [LinkSession.Action]) {
        guard var session else { return }
        let actions = body(&session)
        self.session = session
        run(actions)
    }

    func wake() { withSession { $0.wake(now: dependencies.clock()) } }
    func offer(_ envelope: OutgoingEnvelope) {
        withSession { $0.offer(envelope, directory: dependencies.directory.snapshot, now: dependencies.clock()) }
    }
    func tick(now: UInt64) { withSession { $0.tick(now: now) } }
    func directoryChanged(_ snapshot: RelayDirectory.Snapshot) { withSession { $0.directoryChanged(snapshot, now: dependencies.clock()) } }

    /// Sends a device's request on to this relay; the answer, or a failure if the link is
    /// not up or ends first.
    func proxy(_ body: LinkLinkRequest.OneOf_Body) -> EventLoopFuture<LinkLinkReply> {
        let promise = loop.makePromise(of: LinkLinkReply.self)
        let token = nextToken
        nextToken += 1
        guard var session, let action = session.proxy(body, token: token, now: dependencies.clock()) else {
            promise.fail(RelayError(.internal, code: "link-down", message: "the link to relay \(name) is not up"))
            return promise.futureResult
        }
        self.session = session
        proxies[token] = promise
        run([action])
        return promise.futureResult
    }

    private func failProxies() {
        let waiting = proxies
        proxies.removeAll()
        for promise in waiting.values {
            promise.fail(RelayError(.internal, code: "link-down", message: "the link to relay \(name) ended"))
        }
    }

    private func run(_ actions: [LinkSession.Action]) {
        for action in actions {
            switch action {
            case .send(let request):
                send(request)
            case .established:
                backoff.connected(at: Double(dependencies.clock()))
                lastSuccess = dependencies.clock()
                lastError = nil
                setPhase(.up)
            case .load(let excluding, let limit):
                load(excluding: excluding, limit: limit)
            case .complete(let answered):
                if completions.isEmpty {
                    let loopBound = NIOLoopBound(self, eventLoop: loop)
                    loop.execute {
                        let link = loopBound.value
                        let batch = link.completions
                        link.completions = []
                        link.complete(batch)
                    }
                }
                completions += answered
            case .storeDirectory(let entries, let since, let checkpoint):
                storeDirectory(entries, since: since, checkpoint: checkpoint)
            case .notHome(_, let mailbox, _):
                federation.notHome(mailbox: mailbox, from: name)
            case .fork(let detail):
                dependencies.counters.count(.directoryFork)
                logger.critical("directory fork met on a relay link: directory exchange on this link stops until an admin resolves it", metadata: [
                    "detail": "\(detail)"])
            case .proxied(let token, let reply):
                proxies.removeValue(forKey: token)?.succeed(reply)
            case .warn(let message):
                logger.warning("relay link", metadata: ["detail": "\(message)"])
            case .peerClosing(let reason):
                lastError = reason
                logger.info("relay link ended by the other relay", metadata: ["reason": "\(reason)"])
                channel?.close(promise: nil)
            case .close(let reason):
                lastError = reason
                logger.warning("closing relay link", metadata: ["reason": "\(reason)"])
                channel?.close(promise: nil)
            case .loadBlobs, .readBlob, .completeBlob:
                runBlobAction(action)
            }
        }
    }

    private func load(excluding: Set<MessageID>, limit: Int) {
        let (store, clock, destination) = (dependencies.store, dependencies.clock, name)
        if let node = dependencies.node, leaseHolder == nil { leaseHolder = node.newHolder() }
        let lease = dependencies.node.flatMap { node in leaseHolder.map { (node.queue, $0) } }
        dependencies.threadPool.runIfActive(eventLoop: loop) { () throws -> [OutgoingEnvelope] in
            if let lease {
                return try lease.0.leaseForForwarding(destination: destination, holder: lease.1, excluding: excluding, limit: limit, now: clock())
            }
            return try store.nextForForwarding(destination: destination, excluding: excluding, limit: limit, now: clock())
        }.whenComplete { [loopBound = NIOLoopBound(self, eventLoop: loop)] result in
            let link = loopBound.value
            // The link closed while loading: what the load leased goes back too.
            if let lease, link.leaseHolder != lease.1 { link.dependencies.node?.release(lease.1) }
            switch result {
            case .success(let envelopes):
                link.withSession { $0.loaded(envelopes, limit: limit, directory: link.dependencies.directory.snapshot, now: link.dependencies.clock()) }
            case .failure(let error):
                link.logger.error("could not read the forwarding queue", metadata: ["error": "\(error)"])
                link.dependencies.node?.check(error)
                // Loading stays stuck without an answer: the link starts over.
                link.channel?.close(promise: nil)
            }
        }
    }

    private func complete(_ completions: [ForwardCompletion]) {
        let loopBound = NIOLoopBound(self, eventLoop: loop)
        let ids = completions.map(\.id)
        let handoff = dependencies.handoff
        dependencies.writer.completeForwarding(completions) { result in
            handoff.execute(on: loopBound.eventLoop) {
                let link = loopBound.value
                switch result {
                case .success:
                    link.lastSuccess = link.dependencies.clock()
                case .failure(let error):
                    // The copies stay queued and go again: a repeat the peer answers COMMITTED.
                    link.logger.error("could not record forwarded envelopes", metadata: ["error": "\(error.message)"])
                }
                link.withSession { $0.completionsCommitted(ids, now: link.dependencies.clock()) }
            }
        }
    }

    private func storeDirectory(_ entries: [Data], since: Int, checkpoint: Data) {
        let (publisher, onPublished) = (dependencies.publisher, dependencies.onPublished)
        let loopBound = NIOLoopBound(self, eventLoop: loop)
        publisher.submit(from: record.noiseKey, entries: entries, checkpoint: checkpoint) { result in
            if case .success(let published) = result { onPublished(published) }
            loopBound.eventLoop.execute {
                let link = loopBound.value
                if case .failure(let error) = result {
                    if error.code == "directory-fork" {
                        _ = try? ForkEvidenceFiles.write(
                            directory: link.dependencies.directory.folder, relay: link.name,
                            since: since, theirs: entries, ours: link.dependencies.directory.snapshot, now: link.dependencies.clock())
                        link.run([.fork("entries fetched from relay \(link.name), kept in \(ForkEvidenceFiles.folder)/: \(error.message)")])
                    } else {
                        link.logger.warning("refused directory entries from a relay link", metadata: ["error": "\(error.message)"])
                    }
                }
            }
        }
    }
}
