import Logging
import NIOCore
import NIOPosix
import ValiseCrypto
import ValiseDirectory
import ValiseWire

/// One client connection: the thin I/O shell around `RelayConnectionState` (Noise and
/// framing) and `RelayRequestProcessor` (the relay protocol). Runs on its channel's event
/// loop; the only work it sends elsewhere is publishing to the directory.
final class RelayConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Context: Sendable {
        let keys: RelayKeys
        let directory: RelayDirectory
        let registry: ConnectionRegistry
        let limiter: ConnectionLimiter
        let limits: RelayConfiguration.Limits
        let threadPool: NIOThreadPool
        let clock: @Sendable () -> UInt64
    }

    private let shared: Context
    private let peer: String
    private var logger: Logger
    private var state: RelayConnectionState
    private var processor: RelayRequestProcessor?
    private var admittedKey: AgreementPublicKey?
    private var handle: Handle?
    private var handshakeTimer: Scheduled<Void>?
    private var frameTimer: Scheduled<Void>?
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
        perform(state.receive(bytes), context: context)
        armFrameTimer(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        handshakeTimer?.cancel()
        frameTimer?.cancel()
        if let admittedKey, let handle { shared.registry.unregister(handle, key: admittedKey) }
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
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            case .authenticate(let key):
                authenticate(key, context: context)
            case .deliver(let message):
                handleMessage(message, context: context)
            case .close(let reason):
                if case .unknownPeer = reason {
                    logger.info("dropped a connection that does not know this relay's key")
                } else {
                    logger.info("closing connection", metadata: ["reason": "\(reason)"])
                }
                close(context)
            }
        }
    }

    private func authenticate(_ key: AgreementPublicKey, context: ChannelHandlerContext) {
        let fingerprint = String(Hex.encode(key.bytes).prefix(16))
        logger[metadataKey: "client.key"] = "\(fingerprint)"
        guard let admission = shared.directory.snapshot.admissions[key] else {
            logger.warning("refused a key that is not a current device or admin key of the directory")
            let refusal = RelayRequestProcessor.error(0, RelayError(
                .notAdmitted, code: "not-admitted", message: "this key is not a current device or admin key of the organisation's directory"))
            perform(state.refuse(with: RelayRequestProcessor.encode(refusal)), context: context)
            return
        }
        handshakeTimer?.cancel()
        handshakeTimer = nil
        logger[metadataKey: "client"] = "\(admission)"
        logger.info("admitted")
        admittedKey = key
        processor = RelayRequestProcessor(admission: admission, maximumEntriesPerFetch: shared.limits.maximumEntriesPerFetch)
        let handle = Handle(channel: context.channel, handler: NIOLoopBound((self, context), eventLoop: context.eventLoop))
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
            perform(state.send(RelayRequestProcessor.encode(reply)), context: context)
        case .replyAndClose(let reply):
            logger.info("closing after a protocol error", metadata: ["error": "\(reply.error.message)"])
            perform(state.sendAndClose(RelayRequestProcessor.encode(reply)), context: context)
        case .publish(let requestID, let entries, let checkpoint):
            publish(requestID: requestID, entries: entries, checkpoint: checkpoint, context: context)
        }
    }

    /// Verification and the file write happen on the thread pool, never on the event loop.
    private func publish(requestID: UInt64, entries: [[UInt8]], checkpoint: [UInt8], context: ChannelHandlerContext) {
        let shared = self.shared
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let future = shared.threadPool.runIfActive(eventLoop: context.eventLoop) { () throws -> RelayDirectory.Published in
            try shared.directory.publish(entries: entries, checkpoint: checkpoint, now: shared.clock())
        }
        future.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let published):
                handler.logger.info("directory published", metadata: ["directory.count": "\(published.count)"])
                if !published.noLongerAdmitted.isEmpty {
                    shared.registry.drop(keys: published.noLongerAdmitted, reason: RelayError(
                        .revoked, code: "revoked", message: "this key is no longer in the organisation's directory"))
                }
                guard !handler.closed else { return }
                handler.perform(handler.state.send(RelayRequestProcessor.encode(RelayRequestProcessor.published(requestID, published))), context: context)
            case .failure(let error):
                let relayError = (error as? RelayError) ?? .storage("\(error)")
                handler.logger.warning("directory publish refused", metadata: ["error": "\(relayError.message)"])
                guard !handler.closed else { return }
                handler.perform(handler.state.send(RelayRequestProcessor.encode(RelayRequestProcessor.error(requestID, relayError))), context: context)
            }
        }
    }

    /// Ends the connection with an error the client can read (if established).
    func drop(_ context: ChannelHandlerContext, _ error: RelayError) {
        guard !closed else { return }
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
        context.close(promise: nil)
    }

    /// A frame that stays incomplete for too long (a client dribbling bytes) ends the
    /// connection, whatever the idle timer says.
    private func armFrameTimer(_ context: ChannelHandlerContext) {
        if state.bufferedByteCount == 0 {
            frameTimer?.cancel()
            frameTimer = nil
            return
        }
        guard frameTimer == nil else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        frameTimer = context.eventLoop.scheduleTask(in: .seconds(shared.limits.frameTimeout)) {
            let (handler, context) = loopBound.value
            handler.frameTimer = nil
            handler.fail(context, .timeout, reason: "a frame stayed incomplete for \(handler.shared.limits.frameTimeout) s")
        }
    }

    /// What the registry holds: the channel and a way back onto the handler's event loop.
    final class Handle: DroppableConnection {
        let channel: any Channel
        let handler: NIOLoopBound<(RelayConnectionHandler, ChannelHandlerContext)>

        init(channel: any Channel, handler: NIOLoopBound<(RelayConnectionHandler, ChannelHandlerContext)>) {
            self.channel = channel
            self.handler = handler
        }

        func drop(_ reason: RelayError) {
            let handler = self.handler
            channel.eventLoop.execute {
                let (connection, context) = handler.value
                connection.drop(context, reason)
            }
        }
    }
}

extension TimeAmount {
    static func seconds(_ value: Double) -> TimeAmount { .nanoseconds(Int64(value * 1e9)) }
}
