import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOPosix
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// Store and forward for one connection: sends handed to the group commit, delivery of
/// the device's mailbox within its window, acknowledgements, status queries, and directory
/// publishes; the connection's I/O shell is in RelayConnectionHandler.swift.
extension RelayConnectionHandler {
    /// The envelope joins the next group commit; `Accepted` goes out only once it is durable.
    func send(requestID: UInt64, envelope: IncomingEnvelope, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let (mailboxes, handoff, federation) = (shared.mailboxes, shared.handoff, shared.federation)
        let eventLoop = context.eventLoop
        pendingRequests += 1
        let bytes = envelope.body.count
        pendingBytes += bytes
        shared.writer.accept(envelope) { result in
            if case .success(.accepted(let expiresAt, duplicate: false)) = result {
                // Committed to the forwarding queue: the link to its relay pushes it on.
                if let destination = envelope.destination {
                    let stored = StoredEnvelope(accepted: envelope, expiresAt: expiresAt)
                    federation?.offer(OutgoingEnvelope(
                        sequence: 0, destination: destination, mailbox: envelope.mailbox, id: envelope.id, precedence: envelope.precedence,
                        requestedTTL: envelope.requestedTTL, arrivedAt: stored.arrivedAt, expiresAt: expiresAt, hops: envelope.hops,
                        body: envelope.body))
                } else {
                    mailboxes.offer(StoredEnvelope(accepted: envelope, expiresAt: expiresAt))
                }
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
                case .failure(let error) where error.kind == .unavailable:
                    // Not stored: the client sends it again through another node.
                    reply = RelayRequestProcessor.error(requestID, SharedNode.unavailable)
                    handler.shared.node?.check(error)
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

    func startDelivery(window: Int, context: ChannelHandlerContext) {
        guard delivery == nil, case .device(let member)? = processor?.admission, let handle else { return }
        let mailbox = Mailbox(member.value)
        delivery = Delivery(mailbox: mailbox, window: window, holder: shared.node?.newHolder())
        shared.mailboxes.register(handle, for: mailbox)
        pump(context)
    }

    /// Loads the next envelopes (off the event loop) while the window has room, and sends them.
    func pump(_ context: ChannelHandlerContext) {
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
        // With a shared store, what this connection loads is leased to it: no connection of
        // another node delivers the same envelope meanwhile.
        let lease = shared.node.flatMap { node in delivery.holder.map { (node.queue, $0) } }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        shared.threadPool.runIfActive(eventLoop: context.eventLoop) { () throws -> [StoredEnvelope] in
            // The clock is read here, not before the hop: the job may have waited.
            if let lease {
                return try lease.0.leaseForDelivery(mailbox: mailbox, holder: lease.1, excluding: excluding, limit: room, now: clock())
            }
            return try store.nextForDelivery(mailbox: mailbox, excluding: excluding, limit: room, now: clock())
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            // Closed while loading: what the load leased goes back too (the close released before it).
            if handler.closed, let lease { handler.shared.node?.release(lease.1) }
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
                if sent > 0 {
                    delivery.idleAnnounced = false
                    handler.shared.metrics.deliveries.increment(by: sent)
                }
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
                if handler.shared.node?.check(error) == true {
                    handler.drop(context, SharedNode.unavailable)
                    return
                }
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
    func offer(_ envelope: StoredEnvelope, context: ChannelHandlerContext) {
        guard !closed, var delivery else { return }
        if delivery.inFlight.contains(envelope.id) || delivery.acknowledging.contains(envelope.id) { return }
        // With a shared store, an envelope is only sent once leased: the store is asked.
        guard delivery.holder == nil, delivery.caughtUp, !delivery.loading, context.channel.isWritable, delivery.inFlight.count < delivery.window,
              envelope.expiresAt > shared.clock() else {
            delivery.caughtUp = false
            self.delivery = delivery
            pump(context)
            return
        }
        delivery.inFlight.insert(envelope.id)
        delivery.idleAnnounced = false
        self.delivery = delivery
        shared.metrics.deliveries.increment()
        perform(state.send(RelayRequestProcessor.encode(RelayRequestProcessor.deliver(envelope))), context: context)
    }

    func acknowledge(_ ids: [MessageID], context: ChannelHandlerContext) {
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
                        handler.shared.node?.check(error)
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
    func pumpUnlessCaughtUp(_ context: ChannelHandlerContext) {
        if delivery?.caughtUp != true { pump(context) }
    }

    /// Runs `work` (store access) on the thread pool, counted as a pending request, and
    /// sends its answer; a failure is logged and answered INTERNAL.
    func answerOffLoop(
        requestID: UInt64, context: ChannelHandlerContext, failure: String, _ work: @escaping @Sendable () throws -> WireRelayMessage
    ) {
        answer(requestID: requestID, context: context, failure: failure, shared.threadPool.runIfActive(eventLoop: context.eventLoop, work))
    }

    /// Sends the answer `future` gives, counted as a pending request until then; a failure
    /// is logged and answered INTERNAL.
    /// `bytes` (a blob's part or the bytes a fetch asks for) count as pending bytes too.
    func answer(requestID: UInt64, context: ChannelHandlerContext, failure: String, bytes: Int = 0, _ future: EventLoopFuture<WireRelayMessage>) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pendingRequests += 1
        pendingBytes += bytes
        future.whenComplete { result in
            let (handler, context) = loopBound.value
            guard !handler.closed else { return }
            handler.requestAnswered(context, bytes: bytes)
            let reply: WireRelayMessage
            switch result {
            case .success(let message):
                reply = message
            case .failure(let error) where handler.shared.node?.check(error) == true:
                reply = RelayRequestProcessor.error(requestID, SharedNode.unavailable)
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
    func publish(requestID: UInt64, key: AgreementPublicKey, entries: [Data], checkpoint: Data, context: ChannelHandlerContext) {
        let shared = self.shared
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let bytes = entries.reduce(checkpoint.count) { $0 + $1.count }
        pendingRequests += 1
        pendingBytes += bytes
        let eventLoop = context.eventLoop
        shared.publisher.submit(from: key, entries: entries, checkpoint: checkpoint) { result in
            // Revoked and moved keys go at once, and rotated members' old prekeys, from the
            // publisher's thread, before this connection hears; the links pass the entries on.
            if case .success(let published) = result { shared.applyPublished(published) }
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
}
