import CoreMetrics
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
final class RelayConnectionHandler: ChannelDuplexHandler, FlushBatching {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Delivery of this device's mailbox, once it asked (Fetch).
    struct Delivery {
        let mailbox: Mailbox
        let window: Int
        /// This connection's leases, when several nodes share the store (`SharedQueue`).
        let holder: LeaseHolder?
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

    let shared: Context
    let peer: String
    var logger: Logger
    var state: RelayConnectionState
    var processor: RelayRequestProcessor?
    var admittedKey: AgreementPublicKey?
    var handle: Handle?
    var delivery: Delivery?
    var handshakeTimer: Scheduled<Void>?
    var frameTimer: Scheduled<Void>?
    var readHeld = false
    /// Writes wait for one flush at the end of this event-loop tick: a batch of deliveries
    /// or answers costs one write system call, not one each.
    var flushScheduled = false
    /// Sends, status queries and directory publishes handed off and not yet answered.
    var pendingRequests = 0
    /// Envelope bytes of the Sends among them, and entry bytes of the publishes.
    var pendingBytes = 0
    var closed = false
    /// The connection became a relay link (`IncomingLinkHandler`).
    var handedOver = false
    /// Where this connection's blob requests run, from its first one.
    var blobs: RelayBlobs.BlobLane?

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
        // Bytes that arrive while the hand-over to a relay link completes are the link's.
        guard !handedOver else {
            context.fireChannelRead(data)
            return
        }
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        let framesBefore = state.completedFrameCount
        perform(state.receive(bytes), context: context)
        guard !handedOver else { return }
        armFrameTimer(context, frameCompleted: state.completedFrameCount != framesBefore)
    }

    /// Reads wait while the client is not reading our answers (back-pressure) and while it
    /// has as many requests waiting on the store as it may.
    func mayRead(_ context: ChannelHandlerContext) -> Bool {
        context.channel.isWritable && !pendingFull
    }

    /// Requests, or envelope bytes, waiting for their answers are at the connection's limit.
    var pendingFull: Bool {
        pendingRequests >= shared.limits.maximumPendingRequests || pendingBytes >= shared.limits.maximumPendingBytes
    }

    /// Counts a pause of reading for answers still owed (a slow reader is counted when its
    /// outgoing buffer fills, in `channelWritabilityChanged`).
    func countHeldRead(_ context: ChannelHandlerContext) {
        if context.channel.isWritable { shared.counters.count(.pendingRequests) }
    }

    func read(context: ChannelHandlerContext) {
        if handedOver || mayRead(context) {
            context.read()
        } else {
            if !readHeld { countHeldRead(context) }
            readHeld = true
        }
    }

    func resumeReading(_ context: ChannelHandlerContext) {
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
    func requestAnswered(_ context: ChannelHandlerContext, bytes: Int = 0) {
        pendingRequests -= 1
        pendingBytes -= bytes
        resumeReading(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A relay link's handler took the connection, and releases it.
        guard !handedOver else {
            context.fireChannelInactive()
            return
        }
        closed = true
        handshakeTimer?.cancel()
        frameTimer?.cancel()
        if let admittedKey, let handle { shared.registry.unregister(handle, key: admittedKey) }
        if let delivery, let handle { shared.mailboxes.unregister(handle, for: delivery.mailbox) }
        if let holder = delivery?.holder { shared.node?.release(holder) }
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

    func perform(_ actions: [RelayConnectionState.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .write(let bytes):
                context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                scheduleFlush(context)
            case .authenticate(let key):
                shared.metrics.handshakesCompleted.increment()
                authenticate(key, context: context)
            case .deliver(let message):
                handleMessage(message, context: context)
            case .relayLink(let remaining):
                handOverToLink(remaining, context: context)
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

    func authenticate(_ key: AgreementPublicKey, context: ChannelHandlerContext) {
        let fingerprint = String(Hex.encode(key.bytes).prefix(16))
        let snapshot = shared.directory.snapshot
        guard let admission = snapshot.admissions[key] else {
            shared.counters.count(.notAdmitted)
            if snapshot.retiredTransportKeys.contains(key) {
                // A device that rotated its keys and has not synced yet: routine, and its key
                // at debug level only, as an admitted one's.
                logger.debug("refused a rotated device's old key", metadata: ["client.key": "\(fingerprint)"])
                logger.info("refused a device key that a rotation replaced")
            } else {
                logger.warning("refused a key that is not a current device or admin key of the directory", metadata: ["client.key": "\(fingerprint)"])
            }
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
        // From here on the connection is a device's: its address is logged at debug level only.
        if logger.logLevel > .debug { logger[metadataKey: "peer"] = nil }
        admittedKey = key
        processor = RelayRequestProcessor(admission: admission, settings: .init(
            maximumEntriesPerFetch: shared.limits.maximumEntriesPerFetch, maximumEnvelopeBytes: shared.limits.maximumEnvelopeBytes,
            deliveryWindow: shared.limits.deliveryWindow, defaultTTL: shared.queue.defaultTTL, maximumTTL: shared.queue.maximumTTL,
            maximumBlobBytes: shared.blobs == nil ? 0 : UInt64(max(0, shared.queue.maximumBlobBytes))))
        let handle = Handle(channel: context.channel, handler: NIOLoopBound((self, context), eventLoop: context.eventLoop), handoff: shared.handoff)
        self.handle = handle
        shared.registry.register(handle, key: key, role: admission.connectionRole)
        // A node that lost its shared store serves nobody: the client tries the next address.
        // Checked after registering, so that a loss announced meanwhile drops this one too.
        if shared.node?.isAvailable == false {
            perform(state.refuse(with: RelayRequestProcessor.encode(RelayRequestProcessor.error(0, SharedNode.unavailable))), context: context)
            return
        }
        // The key may have been revoked, or its home moved, between the snapshot above and
        // registering.
        let now = shared.directory.snapshot
        guard now.admissions[key] == admission else {
            if let moved = RelayDirectory.rehoming(from: admission, to: now.admissions[key], relayName: now.relayName) {
                drop(context, .init(.notHome, code: "not-home", message: moved))
            } else {
                drop(context, .init(.revoked, code: "revoked", message: "this key was revoked"))
            }
            return
        }
        perform(state.admit(), context: context)
    }

    func handleMessage(_ message: [UInt8], context: ChannelHandlerContext) {
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
        case .prekeyUpload(let requestID, let mailbox, let signedPrekey, let signedPrekeySignature, let envelopeKey, let envelopeKeySignature, let oneTime, let kem):
            let prekeys = StoredPrekeys(
                signedPrekey: signedPrekey, signedPrekeySignature: signedPrekeySignature, envelopeKey: envelopeKey,
                envelopeKeySignature: envelopeKeySignature, updatedAt: shared.clock())
            storePrekeys(requestID: requestID, mailbox: mailbox, prekeys: prekeys, oneTime: oneTime, kem: kem, context: context)
        case .prekeyFetch(let requestID, let targets, let envelopeKeyOnly):
            guard let admittedKey else { return }
            if let remote = remoteTargets(targets) {
                proxyPrekeyFetch(requestID: requestID, device: admittedKey, targets: targets, remote: remote, envelopeKeyOnly: envelopeKeyOnly, context: context)
                return
            }
            switch shared.prekeyDispenser.fetch(requestID: requestID, device: admittedKey, targets: targets, envelopeKeyOnly: envelopeKeyOnly) {
            case .reply(let reply):
                perform(state.send(RelayRequestProcessor.encode(reply)), context: context)
            case .work(let work):
                answerOffLoop(requestID: requestID, context: context, failure: "could not read prekeys", work)
            }
        case .blobUpload, .blobChunk, .blobFetch, .blobFetched:
            handleBlob(outcome, context: context)
        }
    }

    /// Answers RATE_LIMITED for a device past its send rate, and counts it.
    func rateLimited(_ requestID: UInt64, _ limit: LimitCounters.Limit, _ message: String, context: ChannelHandlerContext) {
        shared.counters.count(limit)
        let refusal = RelayRequestProcessor.error(requestID, RelayError(.rateLimited, code: "rate-limited", message: message))
        perform(state.send(RelayRequestProcessor.encode(refusal)), context: context)
    }

    /// Counts an answer that a limit made (TOO_LARGE, MAILBOX_FULL, STORAGE_FULL) or that
    /// refused access (REVOKED, NOT_ALLOWED, BAD_REQUEST); the latter are logged too.
    func countRefusal(_ reply: WireRelayMessage) {
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

    /// Ends the connection with an error the client can read (if established).
    func drop(_ context: ChannelHandlerContext, _ error: RelayError) {
        guard !closed else { return }
        if error.protocolCode == .revoked { shared.counters.count(.revoked) }
        logger.info("dropping connection", metadata: ["reason": "\(error.message)"])
        perform(state.sendAndClose(RelayRequestProcessor.encode(RelayRequestProcessor.error(0, error))), context: context)
        close(context)
    }

    func fail(_ context: ChannelHandlerContext, _ code: RelayError.ProtocolCode, reason: String) {
        guard !closed else { return }
        logger.info("closing connection", metadata: ["reason": "\(reason)"])
        if state.isEstablished {
            drop(context, RelayError(code, code: "timeout", message: reason))
        } else {
            close(context)
        }
    }

    func close(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        // Unflushed writes (a last error for the client) would be dropped by the close.
        context.flush()
        context.close(promise: nil)
    }

    /// A frame that stays incomplete for too long (a client dribbling bytes) ends the
    /// connection, whatever the idle timer says. The timer measures the age of the frame
    /// being received: it restarts whenever a frame completes and another has begun.
    func armFrameTimer(_ context: ChannelHandlerContext, frameCompleted: Bool) {
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
}

extension TimeAmount {
    static func seconds(_ value: Double) -> TimeAmount { .nanoseconds(Int64(value * 1e9)) }
}

/// A connection that turns out to be a relay link hands itself to `IncomingLinkHandler`
/// and leaves the pipeline.
extension RelayConnectionHandler: RemovableChannelHandler {}
