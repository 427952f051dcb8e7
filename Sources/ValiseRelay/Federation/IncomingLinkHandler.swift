import Foundation
import Logging
import NIOCore
import NIOPosix
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// One incoming relay link: the thin I/O shell around `LinkResponderState` (KKhfs and
/// framing) and `LinkRequestProcessor` (the link protocol). It takes over a connection
/// whose preamble asked for channel 2 from `RelayConnectionHandler`. A Forward is answered
/// only after the group-commit writer made it durable (custody transfer).
final class IncomingLinkHandler: ChannelDuplexHandler, FlushBatching {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Requests waiting on the store or the publisher before reading pauses, and their
    /// bytes (docs/PROTOCOL.md: 256 requests and 4 MiB of a link at once).
    static let maximumPending = 256
    static let maximumPendingBytes = 4 << 20

    let shared: RelayConnectionHandler.Context
    let peer: String
    var logger: Logger
    var state: LinkResponderState
    var processor: LinkRequestProcessor?
    var peerKey: AgreementPublicKey?
    var pending = 0
    var pendingBytes = 0
    var flushScheduled = false
    var readHeld = false
    var closed = false
    var handshakeTimer: Scheduled<Void>?
    /// In the relay's registry, so that shutdown reaches links too.
    var handle: Handle?
    /// Bytes that arrived after the preamble, read by the handler this one replaced.
    private var initialBytes: [UInt8]

    init(shared: RelayConnectionHandler.Context, peer: String, logger: Logger, initialBytes: [UInt8]) {
        self.shared = shared
        self.peer = peer
        self.logger = logger
        self.initialBytes = initialBytes
        let directory = shared.directory
        let own = shared.keys.noise.publicKey
        self.state = LinkResponderState(
            localStatic: shared.keys.noise, maximumMessageLength: shared.limits.maximumMessageBytes, afterPreamble: true,
            admit: { key in key != own && directory.snapshot.state.relays.values.contains { $0.noiseKey == key } })
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: .seconds(shared.limits.handshakeTimeout)) {
            let (handler, context) = loopBound.value
            handler.logger.info("closing relay link: no handshake in time")
            handler.close(context)
        }
        let bytes = initialBytes
        initialBytes = []
        if !bytes.isEmpty { perform(state.receive(bytes), context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        perform(state.receive(buffer.readBytes(length: buffer.readableBytes) ?? []), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        handshakeTimer?.cancel()
        if let handle, let peerKey { shared.registry.unregister(handle, key: peerKey) }
        shared.limiter.release(peer)
        if let processor { logger.info("relay link closed", metadata: ["link.relay": "\(processor.peerName)"]) }
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if mayRead(context) {
            context.read()
        } else {
            readHeld = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resume(context)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            logger.info("closing relay link: idle")
            close(context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func mayRead(_ context: ChannelHandlerContext) -> Bool {
        pending < Self.maximumPending && pendingBytes < Self.maximumPendingBytes && context.channel.isWritable
    }

    func resume(_ context: ChannelHandlerContext) {
        if readHeld && mayRead(context) {
            readHeld = false
            context.read()
        }
    }

    func close(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        context.flush()
        context.close(promise: nil)
    }

    // MARK: Actions

    func perform(_ actions: [LinkResponderState.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .write(let bytes):
                context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                scheduleFlush(context)
            case .established:
                guard let key = state.peerKey else {
                    close(context)
                    return
                }
                established(key, context: context)
            case .deliver(let message):
                handle(message, context: context)
            case .close(let reason):
                logger.info("closing relay link", metadata: ["reason": "\(reason)"])
                close(context)
            }
        }
    }

    private func established(_ key: AgreementPublicKey, context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        let snapshot = shared.directory.snapshot
        guard let relay = snapshot.state.relays.values.first(where: { $0.noiseKey == key }) else {
            close(context)
            return
        }
        peerKey = key
        let handle = Handle(channel: context.channel, handler: NIOLoopBound((self, context), eventLoop: context.eventLoop))
        self.handle = handle
        shared.registry.register(handle, key: key, role: .relay)
        logger[metadataKey: "link.relay"] = "\(relay.name)"
        logger.info("relay link admitted")
        processor = LinkRequestProcessor(peerName: relay.name, settings: .init(
            maximumEnvelopeBytes: shared.limits.maximumEnvelopeBytes, maximumEntriesPerFetch: shared.limits.maximumEntriesPerFetch,
            defaultTTL: shared.queue.defaultTTL, maximumTTL: shared.queue.maximumTTL,
            maximumBlobBytes: shared.federation?.dependencies.blobs?.maximumBlobBytes ?? 0))
        shared.federation?.peerReachable(relay.name)
    }

    func reply(_ reply: LinkLinkReply, context: ChannelHandlerContext, thenClose: Bool = false) {
        guard !closed else { return }
        perform(state.send(LinkCodec.encode(reply)), context: context)
        if thenClose { close(context) }
    }

    private func handle(_ message: [UInt8], context: ChannelHandlerContext) {
        guard var processor, let peerKey else { return }
        let snapshot = shared.directory.snapshot
        // A relay removed from the directory since the link came up loses it.
        guard snapshot.state.relays.values.contains(where: { $0.noiseKey == peerKey }) else {
            logger.info("closing relay link: the relay is no longer listed")
            close(context)
            return
        }
        let outcome = processor.handle(message, directory: snapshot)
        self.processor = processor
        switch outcome {
        case .reply(let answer):
            reply(answer, context: context)
        case .replyAndClose(let answer):
            logger.info("closing relay link after a protocol error", metadata: ["error": "\(answer.error.message)"])
            reply(answer, context: context, thenClose: true)
        case .forward(let requestID, let envelope):
            forward(requestID: requestID, envelope, context: context)
        case .push(let requestID, let since, let entries, let checkpoint):
            push(requestID: requestID, key: peerKey, since: since, entries: entries, checkpoint: checkpoint, context: context)
        case .prekeyFetch(let requestID, let targets, let envelopeKeyOnly):
            // Limited per link: the peer relay counts as one device here (it never says which
            // of its devices asked).
            switch shared.prekeyDispenser.fetch(requestID: requestID, device: peerKey, targets: targets, envelopeKeyOnly: envelopeKeyOnly) {
            case .reply(let answer):
                reply(Self.linkReply(answer), context: context)
            case .work(let work):
                offLoop(requestID: requestID, context: context) { Self.linkReply(try work()) }
            }
        case .blobOffer(let requestID, let id, let size, let lifetime, let fetches):
            blobOffer(requestID: requestID, id: id, size: size, lifetime: lifetime, fetches: fetches, context: context)
        case .blobPart(let requestID, let id, let offset, let bytes):
            blobPart(requestID: requestID, id: id, offset: offset, bytes: bytes, context: context)
        case .status(let requestID, let ids, let nonce):
            let (store, keys, clock) = (shared.store, shared.keys, shared.clock)
            offLoop(requestID: requestID, context: context) {
                Self.linkReply(RelayRequestProcessor.status(requestID, ids: ids, states: try store.states(of: ids, now: clock()), nonce: nonce, keys: keys))
            }
        }
    }

    /// A relay-protocol answer (prekey bundles, statuses, an error) as a link answer.
    static func linkReply(_ message: WireRelayMessage) -> LinkLinkReply {
        switch message.body {
        case .prekeyBundles(let bundles)?: LinkRequestProcessor.reply(message.requestID, .prekeyBundles(bundles))
        case .status(let status)?: LinkRequestProcessor.reply(message.requestID, .status(status))
        case .error(let error)? where error.code == .rateLimited:
            LinkRequestProcessor.error(message.requestID, .rateLimited, error.message)
        case .error(let error)?: LinkRequestProcessor.error(message.requestID, .internal, error.message)
        default: LinkRequestProcessor.error(message.requestID, .internal, "the relay could not answer")
        }
    }

    private func offLoop(requestID: UInt64, context: ChannelHandlerContext, _ work: @escaping @Sendable () throws -> LinkLinkReply) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pending += 1
        shared.threadPool.runIfActive(eventLoop: context.eventLoop, work).whenComplete { result in
            let (handler, context) = loopBound.value
            handler.pending -= 1
            switch result {
            case .success(let answer): handler.reply(answer, context: context)
            case .failure(let error):
                handler.logger.error("could not answer a relay link's request", metadata: ["error": "\(error)"])
                handler.reply(LinkRequestProcessor.error(requestID, .internal, "the relay could not read its store"), context: context)
            }
            handler.resume(context)
        }
    }

    /// Commits, then answers: the origin deletes its copy only on this answer.
    private func forward(requestID: UInt64, _ envelope: IncomingEnvelope, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let (mailboxes, handoff, clock, directory) = (shared.mailboxes, shared.handoff, shared.clock, shared.directory)
        let eventLoop = context.eventLoop
        let bytes = envelope.body.count
        pending += 1
        pendingBytes += bytes
        shared.writer.accept(envelope) { result in
            if case .success(.accepted(let expiresAt, duplicate: false)) = result {
                mailboxes.offer(StoredEnvelope(accepted: envelope, expiresAt: expiresAt))
            }
            handoff.execute(on: eventLoop) {
                let (handler, context) = loopBound.value
                handler.pending -= 1
                handler.pendingBytes -= bytes
                switch result {
                case .success(let outcome):
                    if case .accepted = outcome { handler.shared.storage.accepted() }
                    handler.reply(LinkRequestProcessor.result(
                        requestID, id: envelope.id, outcome: outcome, now: clock(), directoryCount: directory.snapshot.count), context: context)
                case .failure(let error):
                    handler.logger.error("could not store a forwarded envelope", metadata: ["error": "\(error.message)"])
                    handler.reply(LinkRequestProcessor.result(
                        requestID, id: envelope.id, outcome: .refused(.storageFull), now: clock(), directoryCount: directory.snapshot.count),
                        context: context)
                }
                handler.resume(context)
            }
        }
    }

    private func push(
        requestID: UInt64, key: AgreementPublicKey, since: UInt64, entries: [Data], checkpoint: Data, context: ChannelHandlerContext
    ) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let shared = self.shared
        let eventLoop = context.eventLoop
        let bytes = entries.reduce(checkpoint.count) { $0 + $1.count }
        pending += 1
        pendingBytes += bytes
        shared.publisher.submit(from: key, entries: entries, checkpoint: checkpoint) { result in
            if case .success(let published) = result { shared.applyPublished(published) }
            eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.pending -= 1
                handler.pendingBytes -= bytes
                switch result {
                case .success(let published):
                    var head = LinkDirectoryHead()
                    head.directoryCount = UInt64(published.count)
                    head.directoryHead = Data(published.head.bytes)
                    handler.reply(LinkRequestProcessor.reply(requestID, .directoryHead(head)), context: context)
                case .failure(let error) where error.code == "directory-fork":
                    shared.counters.count(.directoryFork)
                    let kept = try? ForkEvidenceFiles.write(
                        directory: shared.directory.folder, relay: handler.processor?.peerName ?? "unknown", since: Int(clamping: since),
                        theirs: entries, ours: shared.directory.snapshot, now: shared.clock())
                    handler.logger.critical("directory fork met on a relay link: entries from the peer conflict with this relay's", metadata: [
                        "error": "\(error.message)", "evidence.files": "\((kept ?? 0) * 2)", "evidence.folder": "\(ForkEvidenceFiles.folder)"])
                    handler.reply(LinkRequestProcessor.error(requestID, .directoryFork, error.message), context: context)
                case .failure(let error):
                    handler.logger.warning("refused directory entries from a relay link", metadata: ["error": "\(error.message)"])
                    handler.reply(LinkRequestProcessor.error(requestID, .directoryRejected, error.message), context: context)
                }
                handler.resume(context)
            }
        }
    }
}

extension IncomingLinkHandler {
    /// What the registry holds of a link: at shutdown the peer hears SHUTTING_DOWN.
    final class Handle: DroppableConnection {
        let channel: any Channel
        let handler: NIOLoopBound<(IncomingLinkHandler, ChannelHandlerContext)>

        init(channel: any Channel, handler: NIOLoopBound<(IncomingLinkHandler, ChannelHandlerContext)>) {
            self.channel = channel
            self.handler = handler
        }

        func drop(_ reason: RelayError) {
            let handler = self.handler
            channel.eventLoop.execute {
                let (link, context) = handler.value
                let code: LinkLinkError.Code = reason.protocolCode == .shuttingDown ? .shuttingDown : .internal
                link.reply(LinkRequestProcessor.error(0, code, reason.message), context: context, thenClose: true)
            }
        }
    }
}
