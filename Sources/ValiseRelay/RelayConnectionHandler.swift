import Foundation
import Logging
import NIOCore
import NIOPosix
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// One client connection: the thin I/O shell around `RelayConnectionState` (Noise and
/// framing) and `RelayRequestProcessor` (the relay protocol). Runs on its channel's event
/// loop; database work goes to the thread pool, directory publishes to `DirectoryPublisher`.
///
/// Back-pressure: while the channel cannot take more writes (the client is not reading its
/// answers), the handler holds back the next read, so a client that asks and never reads
/// stalls itself in TCP instead of growing the relay's memory.
final class RelayConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What every connection shares: one reference per connection, not a copy of each field
    /// (the difference is a few hundred bytes a connection, with ten thousand held).
    final class Context: Sendable {
        let keys: RelayKeys
        let directory: RelayDirectory
        let registry: ConnectionRegistry
        let limiter: ConnectionLimiter
        let limits: RelayConfiguration.Limits
        let queue: RelayConfiguration.Queue
        let threadPool: NIOThreadPool
        let store: any EnvelopeStore
        let prekeys: any PrekeyStore
        let prekeyDispenser: PrekeyDispenser
        let sends: DeviceRateLimiter
        /// Directory publishes, per publishing key.
        let publishes: DeviceRateLimiter
        /// Verifies and stores publishes, on a thread of its own, fairly per key.
        let publisher: DirectoryPublisher
        /// What the limits refused or held back, for `valised status`.
        let counters: LimitCounters
        /// Whether the store is refusing for want of space (logged when that changes).
        let storage: StorageWatch
        let writer: GroupCommitWriter
        let mailboxes: MailboxRegistry
        /// Hands the writer's completions to event loops, one task per loop per commit.
        let handoff: LoopHandoff
        let clock: @Sendable () -> UInt64
        /// Called with the members that a publish took out of the directory.
        let onMembersRemoved: @Sendable ([MemberName]) -> Void

        init(
            keys: RelayKeys,
            directory: RelayDirectory,
            registry: ConnectionRegistry,
            limiter: ConnectionLimiter,
            limits: RelayConfiguration.Limits,
            queue: RelayConfiguration.Queue,
            threadPool: NIOThreadPool,
            store: any EnvelopeStore,
            prekeys: any PrekeyStore,
            prekeyDispenser: PrekeyDispenser,
            sends: DeviceRateLimiter,
            publishes: DeviceRateLimiter,
            publisher: DirectoryPublisher,
            counters: LimitCounters,
            storage: StorageWatch,
            writer: GroupCommitWriter,
            mailboxes: MailboxRegistry,
            handoff: LoopHandoff,
            clock: @escaping @Sendable () -> UInt64,
            onMembersRemoved: @escaping @Sendable ([MemberName]) -> Void
        ) {
            self.keys = keys
            self.directory = directory
            self.registry = registry
            self.limiter = limiter
            self.limits = limits
            self.queue = queue
            self.threadPool = threadPool
            self.store = store
            self.prekeys = prekeys
            self.prekeyDispenser = prekeyDispenser
            self.sends = sends
            self.publishes = publishes
            self.publisher = publisher
            self.counters = counters
            self.storage = storage
            self.writer = writer
            self.mailboxes = mailboxes
            self.handoff = handoff
            self.clock = clock
            self.onMembersRemoved = onMembersRemoved
        }
    }

    /// Delivery of this device's mailbox, once it asked (Fetch).
    private struct Delivery {
        let mailbox: Mailbox
        let window: Int
        var inFlight: Set<MessageID> = []
        /// Whether MailboxIdle was sent since the last delivery.
        var idleAnnounced = false
        /// Acknowledged but not yet deleted by the store: out of the window, yet still read
        /// back by a load until the ack's commit, so loads leave them out.
        var acknowledging: Set<MessageID> = []
        var loading = false
        var wokenWhileLoading = false
        /// The last load found fewer envelopes than it had room for, and nothing arrived
        /// since that was not sent at once: the store holds nothing for this mailbox that is
        /// not already in flight, so a newly accepted envelope can go straight out.
        var caughtUp = false
    }

    private let shared: Context
    private let peer: String
    private var logger: Logger
    private var state: RelayConnectionState
    private var processor: RelayRequestProcessor?
    private var admittedKey: AgreementPublicKey?
    private var handle: Handle?
    private var delivery: Delivery?
    private var handshakeTimer: Scheduled<Void>?
    private var frameTimer: Scheduled<Void>?
    private var readHeld = false
    /// Writes wait for one flush at the end of this event-loop tick: a batch of deliveries
    /// or answers costs one write system call, not one each.
    private var flushScheduled = false
    /// Sends, status queries and directory publishes handed off and not yet answered.
    private var pendingRequests = 0
    /// Envelope bytes of the Sends among them, and entry bytes of the publishes.
    private var pendingBytes = 0
    private var closed = false

    init(shared: Context, peer: String, logger: Logger) {
        self.shared = shared
        self.peer = peer
        self.logger = logger
        self.state = RelayConnectionState(relayKey: shared.keys.noise, maximumMessageLength: shared.limits.maximumMessageBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        logger.debug("connection opened")
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: .seconds(shared.limits.handshakeTimeout)) {
            let (handler, context) = loopBound.value
            handler.fail(context, .timeout, reason: "no admitted handshake within \(handler.shared.limits.handshakeTimeout) s")
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        let framesBefore = state.completedFrameCount
        perform(state.receive(bytes), context: context)
        armFrameTimer(context, frameCompleted: state.completedFrameCount != framesBefore)
    }

    /// Reads wait while the client is not reading our answers (back-pressure) and while it
    /// has as many requests waiting on the store as it may.
    private func mayRead(_ context: ChannelHandlerContext) -> Bool {
        context.channel.isWritable && !pendingFull
    }

    /// Requests, or envelope bytes, waiting for their answers are at the connection's limit.
    private var pendingFull: Bool {
        pendingRequests >= shared.limits.maximumPendingRequests || pendingBytes >= shared.limits.maximumPendingBytes
    }

    /// Counts a pause of reading for answers still owed (a slow reader is counted when its
    /// outgoing buffer fills, in `channelWritabilityChanged`).
    private func countHeldRead(_ context: ChannelHandlerContext) {
        if context.channel.isWritable { shared.counters.count(.pendingRequests) }
    }

    func read(context: ChannelHandlerContext) {
        if mayRead(context) {
            context.read()
        } else {
            if !readHeld { countHeldRead(context) }
            readHeld = true
        }
    }

    private func resumeReading(_ context: ChannelHandlerContext) {
        if readHeld && mayRead(context) {
            readHeld = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            resumeReading(context)
            pump(context)
        } else if !closed {
            shared.counters.count(.slowReader)
        }
        context.fireChannelWritabilityChanged()
    }

    /// A request handed to the store was answered: reading may go on.
    private func requestAnswered(_ context: ChannelHandlerContext, bytes: Int = 0) {
        pendingRequests -= 1
        pendingBytes -= bytes
        resumeReading(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        handshakeTimer?.cancel()
        frameTimer?.cancel()
        if let admittedKey, let handle { shared.registry.unregister(handle, key: admittedKey) }
        if let delivery, let handle { shared.mailboxes.unregister(handle, for: delivery.mailbox) }
        shared.limiter.release(peer)
        logger.debug("connection closed")
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            fail(context, .timeout, reason: "idle for \(shared.limits.idleTimeout) s")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Actions

    private func perform(_ actions: [RelayConnectionState.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .write(let bytes):
                context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                scheduleFlush(context)
            case .authenticate(let key):
                authenticate(key, context: context)
            case .deliver(let message):
                handleMessage(message, context: context)
            case .close(let reason):
                switch reason {
                case .unknownPeer:
                    shared.counters.count(.unknownRelayKey)
                    logger.info("dropped a connection that does not know this relay's key")
                case .notValise:
                    shared.counters.count(.unknownRelayKey)
                    logger.info("dropped a connection that does not speak Valise")
                case .otherVersion(let channel, let version):
                    shared.counters.count(.otherVersion)
                    logger.info("answered a preamble for another version", metadata: ["preamble.channel": "\(channel)", "preamble.version": "\(version)"])
                case .handshakeFailed:
                    shared.counters.count(.handshakeFailed)
                    logger.info("closing connection", metadata: ["reason": "\(reason)"])
                case .protocolViolation:
                    shared.counters.count(.badRequest)
                    logger.info("closing connection", metadata: ["reason": "\(reason)"])
                case .refused, .closedByRelay:
                    logger.info("closing connection", metadata: ["reason": "\(reason)"])
                }
                close(context)
            }
        }
    }

    private func authenticate(_ key: AgreementPublicKey, context: ChannelHandlerContext) {
        let fingerprint = String(Hex.encode(key.bytes).prefix(16))
        guard let admission = shared.directory.snapshot.admissions[key] else {
            shared.counters.count(.notAdmitted)
            logger.warning("refused a key that is not a current device or admin key of the directory", metadata: ["client.key": "\(fingerprint)"])
            let refusal = RelayRequestProcessor.error(0, RelayError(
                .notAdmitted, code: "not-admitted", message: "this key is not a current device or admin key of the organisation's directory"))
            perform(state.refuse(with: RelayRequestProcessor.encode(refusal)), context: context)
            return
        }
        handshakeTimer?.cancel()
        handshakeTimer = nil
        // Admissions are logged at debug level only, and name the device there: a log on
        // the relay's disk must not let anyone match a device (by name, key or address) to
        // the envelopes that arrived at the same time (docs/SECURITY.md).
        logger.debug("admitted", metadata: ["client": "\(admission)", "client.key": "\(fingerprint)"])
        logger[metadataKey: "client"] = "\(admission.role)"
        admittedKey = key
        processor = RelayRequestProcessor(admission: admission, settings: .init(
            maximumEntriesPerFetch: shared.limits.maximumEntriesPerFetch, maximumEnvelopeBytes: shared.limits.maximumEnvelopeBytes,
            deliveryWindow: shared.limits.deliveryWindow, defaultTTL: shared.queue.defaultTTL, maximumTTL: shared.queue.maximumTTL))
        let handle = Handle(channel: context.channel, handler: NIOLoopBound((self, context), eventLoop: context.eventLoop), handoff: shared.handoff)
        self.handle = handle
        shared.registry.register(handle, key: key)
        // The key may have been revoked between the snapshot above and registering.
        guard shared.directory.snapshot.admissions[key] == admission else {
            drop(context, .init(.revoked, code: "revoked", message: "this key was revoked"))
            return
        }
        perform(state.admit(), context: context)
    }

    private func handleMessage(_ message: [UInt8], context: ChannelHandlerContext) {
        guard var processor else { return }
        let outcome = processor.handle(message, directory: shared.directory.snapshot)
        self.processor = processor
        switch outcome {
        case .reply(let reply):
            countRefusal(reply)
            perform(state.send(RelayRequestProcessor.encode(reply)), context: context)
        case .replyAndClose(let reply):
            countRefusal(reply)
            logger.info("closing after a protocol error", metadata: ["error": "\(reply.error.message)"])
            perform(state.sendAndClose(RelayRequestProcessor.encode(reply)), context: context)
        case .publish(let requestID, let entries, let checkpoint):
            guard let admittedKey, shared.publishes.allow(admittedKey) else {
                rateLimited(requestID, .directoryPublishRate, "this key is publishing faster than the relay allows; try again in a minute", context: context)
                return
            }
            publish(requestID: requestID, key: admittedKey, entries: entries, checkpoint: checkpoint, context: context)
        case .send(let requestID, let envelope):
            guard let admittedKey, shared.sends.allow(admittedKey) else {
                rateLimited(requestID, .sendRate, "this device is sending faster than the relay allows; try again shortly", context: context)
                return
            }
            send(requestID: requestID, envelope: envelope, context: context)
        case .fetch(let window):
            startDelivery(window: window, context: context)
        case .acknowledge(let ids):
            acknowledge(ids, context: context)
        case .status(let requestID, let ids, let nonce):
            status(requestID: requestID, ids: ids, nonce: nonce, context: context)
        case .prekeyUpload(let requestID, let mailbox, let signedPrekey, let signedPrekeySignature, let envelopeKey, let envelopeKeySignature, let oneTime):
            let prekeys = StoredPrekeys(
                signedPrekey: signedPrekey, signedPrekeySignature: signedPrekeySignature, envelopeKey: envelopeKey,
                envelopeKeySignature: envelopeKeySignature, updatedAt: shared.clock())
            let store = shared.prekeys
            answerOffLoop(requestID: requestID, context: context, failure: "could not store prekeys") { () throws -> WireRelayMessage in
                do {
                    return RelayRequestProcessor.prekeysStored(requestID, count: try store.storePrekeys(mailbox: mailbox, prekeys: prekeys, oneTimePrekeys: oneTime))
                } catch let error as StoreError where error.kind == .limitReached {
                    return RelayRequestProcessor.error(requestID, RelayError(.tooLarge, code: "too-many-prekeys", message: error.message))
                }
            }
        case .prekeyFetch(let requestID, let targets, let envelopeKeyOnly):
            guard let admittedKey else { return }
            switch shared.prekeyDispenser.fetch(requestID: requestID, device: admittedKey, targets: targets, envelopeKeyOnly: envelopeKeyOnly) {
            case .reply(let reply):
                perform(state.send(RelayRequestProcessor.encode(reply)), context: context)
            case .work(let work):
                answerOffLoop(requestID: requestID, context: context, failure: "could not read prekeys", work)
            }
        }
    }

    /// Answers RATE_LIMITED for a device past its send rate, and counts it.
    private func rateLimited(_ requestID: UInt64, _ limit: LimitCounters.Limit, _ message: String, context: ChannelHandlerContext) {
        shared.counters.count(limit)
        let refusal = RelayRequestProcessor.error(requestID, RelayError(.rateLimited, code: "rate-limited", message: message))
        perform(state.send(RelayRequestProcessor.encode(refusal)), context: context)
    }

    /// Counts an answer that a limit made (TOO_LARGE, MAILBOX_FULL, STORAGE_FULL) or that
    /// refused access (REVOKED, NOT_ALLOWED, BAD_REQUEST); the latter are logged too.
    fileprivate func countRefusal(_ reply: WireRelayMessage) {
        guard case .error(let error)? = reply.body else { return }
        let refusal: LimitCounters.Limit
        switch error.code {
        case .tooLarge: shared.counters.count(.tooLarge); return
        case .mailboxFull: shared.counters.count(.mailboxFull); return
        case .storageFull: shared.counters.count(.storageFull); return
        case .revoked: refusal = .revoked
        case .notAllowed: refusal = .notAllowed
        case .badRequest: refusal = .badRequest
        default: return
        }
        shared.counters.count(refusal)
        logger.info("refused a request", metadata: ["refusal": "\(refusal.rawValue)"])
    }

    // MARK: Store and forward

    /// The envelope joins the next group commit; `Accepted` goes out only once it is durable.
    private func send(requestID: UInt64, envelope: IncomingEnvelope, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let (mailboxes, handoff) = (shared.mailboxes, shared.handoff)
        let eventLoop = context.eventLoop
        pendingRequests += 1
        let bytes = envelope.body.count
        pendingBytes += bytes
        shared.writer.accept(envelope) { result in
            if case .success(.accepted(let expiresAt, duplicate: false)) = result {
                mailboxes.offer(StoredEnvelope(accepted: envelope, expiresAt: expiresAt))
            }
            handoff.execute(on: eventLoop) {
                let (handler, context) = loopBound.value
                guard !handler.closed else { return }
                handler.requestAnswered(context, bytes: bytes)
                let reply: WireRelayMessage
                switch result {
                case .success(let outcome):
                    reply = RelayRequestProcessor.accepted(requestID, id: envelope.id, outcome: outcome)
                    if case .accepted = outcome { handler.shared.storage.accepted() }
                case .failure(let error):
                    handler.logger.error("could not store an envelope", metadata: ["error": "\(error.message)"])
                    reply = RelayRequestProcessor.error(requestID, RelayError(
                        error.kind == .storageFull ? .storageFull : .internal, code: "storage", message: "the relay could not store the envelope"))
                }
                if case .error(let error)? = reply.body, error.code == .storageFull { handler.shared.storage.refused() }
                handler.countRefusal(reply)
                handler.perform(handler.state.send(RelayRequestProcessor.encode(reply)), context: context)
            }
        }
    }

    private func startDelivery(window: Int, context: ChannelHandlerContext) {
        guard delivery == nil, case .device(let member)? = processor?.admission, let handle else { return }
        let mailbox = Mailbox(member.value)
        delivery = Delivery(mailbox: mailbox, window: window)
        shared.mailboxes.register(handle, for: mailbox)
        pump(context)
    }

    /// Loads the next envelopes (off the event loop) while the window has room, and sends them.
    fileprivate func pump(_ context: ChannelHandlerContext) {
        // Deliveries wait while the client is not reading; writability coming back resumes them.
        guard !closed, context.channel.isWritable, var delivery else { return }
        if delivery.loading {
            delivery.wokenWhileLoading = true
            self.delivery = delivery
            return
        }
        let room = delivery.window - delivery.inFlight.count
        guard room > 0 else { return }
        delivery.loading = true
        delivery.wokenWhileLoading = false
        delivery.caughtUp = false
        self.delivery = delivery
        let (store, mailbox, excluding, clock) = (shared.store, delivery.mailbox, delivery.inFlight.union(delivery.acknowledging), shared.clock)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        shared.threadPool.runIfActive(eventLoop: context.eventLoop) { () throws -> [StoredEnvelope] in
            // The clock is read here, not before the hop: the job may have waited.
            try store.nextForDelivery(mailbox: mailbox, excluding: excluding, limit: room, now: clock())
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            guard !handler.closed, var delivery = handler.delivery else { return }
            delivery.loading = false
            switch result {
            case .success(let envelopes):
                let now = handler.shared.clock()
                var sent = 0
                var stoppedEarly = false
                for envelope in envelopes where !delivery.inFlight.contains(envelope.id) && !delivery.acknowledging.contains(envelope.id) {
                    // Never late: an envelope that expired since it was read stays for the sweep.
                    guard envelope.expiresAt > now else { continue }
                    // A client that stopped reading gets no more than the socket's buffer;
                    // the rest waits in the store until writability returns (which pumps).
                    guard context.channel.isWritable else {
                        stoppedEarly = true
                        break
                    }
                    delivery.inFlight.insert(envelope.id)
                    handler.delivery = delivery
                    handler.perform(handler.state.send(RelayRequestProcessor.encode(RelayRequestProcessor.deliver(envelope))), context: context)
                    sent += 1
                }
                if sent > 0 { delivery.idleAnnounced = false }
                // The store had nothing more to deliver now: everything deliverable is on
                // its way, ahead of this notice, for a client that syncs and leaves.
                let exhausted = envelopes.count < room && !stoppedEarly && !delivery.wokenWhileLoading
                delivery.caughtUp = exhausted
                if exhausted, !delivery.idleAnnounced {
                    delivery.idleAnnounced = true
                    handler.perform(handler.state.send(RelayRequestProcessor.encode(RelayRequestProcessor.mailboxIdle)), context: context)
                }
                handler.delivery = delivery
                if delivery.wokenWhileLoading { handler.pump(context) }
            case .failure(let error):
                handler.delivery = delivery
                handler.logger.error("could not read envelopes; trying again in a second", metadata: ["error": "\(error)"])
                context.eventLoop.scheduleTask(in: TimeAmount.seconds(Int64(1))) {
                    let (handler, context) = loopBound.value
                    handler.pump(context)
                }
            }
        }
    }

    /// An envelope for this mailbox was just committed. A connection that is caught up
    /// sends it now; any other looks in the store (which has it) when it has room.
    fileprivate func offer(_ envelope: StoredEnvelope, context: ChannelHandlerContext) {
        guard !closed, var delivery else { return }
        if delivery.inFlight.contains(envelope.id) || delivery.acknowledging.contains(envelope.id) { return }
        guard delivery.caughtUp, !delivery.loading, context.channel.isWritable, delivery.inFlight.count < delivery.window,
              envelope.expiresAt > shared.clock() else {
            delivery.caughtUp = false
            self.delivery = delivery
            pump(context)
            return
        }
        delivery.inFlight.insert(envelope.id)
        delivery.idleAnnounced = false
        self.delivery = delivery
        perform(state.send(RelayRequestProcessor.encode(RelayRequestProcessor.deliver(envelope))), context: context)
    }

    private func acknowledge(_ ids: [MessageID], context: ChannelHandlerContext) {
        guard var delivery else { return }
        let known = ids.filter { delivery.inFlight.contains($0) }
        for id in known {
            delivery.inFlight.remove(id)
            delivery.acknowledging.insert(id)
        }
        self.delivery = delivery
        if !known.isEmpty {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let (eventLoop, handoff) = (context.eventLoop, shared.handoff)
            shared.writer.acknowledge(mailbox: delivery.mailbox, ids: known) { result in
                handoff.execute(on: eventLoop) {
                    let (handler, context) = loopBound.value
                    if case .failure(let error) = result {
                        // The envelopes stay stored and are delivered again: at least once.
                        handler.logger.error("could not record acknowledgements", metadata: ["error": "\(error.message)"])
                    }
                    guard var delivery = handler.delivery else { return }
                    for id in known { delivery.acknowledging.remove(id) }
                    handler.delivery = delivery
                    handler.pumpUnlessCaughtUp(context)
                }
            }
        }
        pumpUnlessCaughtUp(context)
    }

    /// Room in the window was made. A caught-up connection has nothing to look for in the
    /// store (new envelopes are offered to it); any other loads the next ones.
    private func pumpUnlessCaughtUp(_ context: ChannelHandlerContext) {
        if delivery?.caughtUp != true { pump(context) }
    }

    private func status(requestID: UInt64, ids: [MessageID], nonce: [UInt8], context: ChannelHandlerContext) {
        let (store, keys, clock) = (shared.store, shared.keys, shared.clock)
        answerOffLoop(requestID: requestID, context: context, failure: "could not read message states") { () throws -> WireRelayMessage in
            RelayRequestProcessor.status(requestID, ids: ids, states: try store.states(of: ids, now: clock()), nonce: nonce, keys: keys)
        }
    }

    /// Runs `work` (store access) on the thread pool, counted as a pending request, and
    /// sends its answer; a failure is logged and answered INTERNAL.
    private func answerOffLoop(
        requestID: UInt64, context: ChannelHandlerContext, failure: String, _ work: @escaping @Sendable () throws -> WireRelayMessage
    ) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pendingRequests += 1
        shared.threadPool.runIfActive(eventLoop: context.eventLoop, work).whenComplete { result in
            let (handler, context) = loopBound.value
            guard !handler.closed else { return }
            handler.requestAnswered(context)
            let reply: WireRelayMessage
            switch result {
            case .success(let message):
                reply = message
            case .failure(let error):
                handler.logger.error("\(failure)", metadata: ["error": "\(error)"])
                reply = RelayRequestProcessor.error(requestID, RelayError(.internal, code: "storage", message: "the relay \(failure)"))
            }
            handler.perform(handler.state.send(RelayRequestProcessor.encode(reply)), context: context)
        }
    }

    /// Verification and the file write happen on the publisher's thread, never on the event
    /// loop or the store's pool. A publish counts as a pending request, with its bytes, so a
    /// connection that floods publishes stops being read, and what waits is bounded.
    private func publish(requestID: UInt64, key: AgreementPublicKey, entries: [Data], checkpoint: Data, context: ChannelHandlerContext) {
        let shared = self.shared
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let bytes = entries.reduce(checkpoint.count) { $0 + $1.count }
        pendingRequests += 1
        pendingBytes += bytes
        let eventLoop = context.eventLoop
        shared.publisher.submit(from: key, entries: entries, checkpoint: checkpoint) { result in
            // Revoked keys go at once, from the publisher's thread, before this connection hears.
            if case .success(let published) = result {
                if !published.noLongerAdmitted.isEmpty {
                    shared.registry.drop(keys: published.noLongerAdmitted, reason: RelayError(
                        .revoked, code: "revoked", message: "this key is no longer in the organisation's directory"))
                }
                if !published.removedMembers.isEmpty { shared.onMembersRemoved(published.removedMembers) }
            }
            eventLoop.execute {
                let (handler, context) = loopBound.value
                guard !handler.closed else { return }
                handler.requestAnswered(context, bytes: bytes)
                switch result {
                case .success(let published):
                    handler.logger.info("directory published", metadata: ["directory.count": "\(published.count)"])
                    handler.perform(handler.state.send(RelayRequestProcessor.encode(RelayRequestProcessor.published(requestID, published))), context: context)
                case .failure(let error):
                    handler.logger.warning("directory publish refused", metadata: ["error": "\(error.message)"])
                    shared.counters.count(error.protocolCode == .notAllowed ? .notAllowed : .directoryRejected)
                    handler.perform(handler.state.send(RelayRequestProcessor.encode(RelayRequestProcessor.error(requestID, error))), context: context)
                }
            }
        }
    }

    /// Ends the connection with an error the client can read (if established).
    func drop(_ context: ChannelHandlerContext, _ error: RelayError) {
        guard !closed else { return }
        if error.protocolCode == .revoked { shared.counters.count(.revoked) }
        logger.info("dropping connection", metadata: ["reason": "\(error.message)"])
        perform(state.sendAndClose(RelayRequestProcessor.encode(RelayRequestProcessor.error(0, error))), context: context)
        close(context)
    }

    private func fail(_ context: ChannelHandlerContext, _ code: RelayError.ProtocolCode, reason: String) {
        guard !closed else { return }
        logger.info("closing connection", metadata: ["reason": "\(reason)"])
        if state.isEstablished {
            drop(context, RelayError(code, code: "timeout", message: reason))
        } else {
            close(context)
        }
    }

    private func close(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        // Unflushed writes (a last error for the client) would be dropped by the close.
        context.flush()
        context.close(promise: nil)
    }

    private func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.flushScheduled = false
            context.flush()
        }
    }

    /// A frame that stays incomplete for too long (a client dribbling bytes) ends the
    /// connection, whatever the idle timer says. The timer measures the age of the frame
    /// being received: it restarts whenever a frame completes and another has begun.
    private func armFrameTimer(_ context: ChannelHandlerContext, frameCompleted: Bool) {
        if closed || state.bufferedByteCount == 0 || frameCompleted {
            frameTimer?.cancel()
            frameTimer = nil
        }
        guard !closed, state.bufferedByteCount > 0, frameTimer == nil else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        frameTimer = context.eventLoop.scheduleTask(in: .seconds(shared.limits.frameTimeout)) {
            let (handler, context) = loopBound.value
            handler.frameTimer = nil
            handler.fail(context, .timeout, reason: "a frame stayed incomplete for \(handler.shared.limits.frameTimeout) s")
        }
    }

    /// What the registries hold: the channel and a way back onto the handler's event loop.
    final class Handle: DroppableConnection, DeliveryTarget {
        let channel: any Channel
        let handler: NIOLoopBound<(RelayConnectionHandler, ChannelHandlerContext)>
        let handoff: LoopHandoff

        init(channel: any Channel, handler: NIOLoopBound<(RelayConnectionHandler, ChannelHandlerContext)>, handoff: LoopHandoff) {
            self.channel = channel
            self.handler = handler
            self.handoff = handoff
        }

        func drop(_ reason: RelayError) {
            let handler = self.handler
            channel.eventLoop.execute {
                let (connection, context) = handler.value
                connection.drop(context, reason)
            }
        }

        func offer(_ envelope: StoredEnvelope) {
            let handler = self.handler
            handoff.execute(on: channel.eventLoop) {
                let (connection, context) = handler.value
                connection.offer(envelope, context: context)
            }
        }
    }
}

extension TimeAmount {
    static func seconds(_ value: Double) -> TimeAmount { .nanoseconds(Int64(value * 1e9)) }
}
