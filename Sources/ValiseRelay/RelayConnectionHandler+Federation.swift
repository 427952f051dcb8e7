import Foundation
import Logging
import NIOCore
import NIOPosix
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

// A device's requests about members homed at another relay, passed on over this relay's
// link to that relay (docs/PROTOCOL.md, "Relay links": proxied requests). The device never
// talks to the other relay; the other relay never learns which device asked.
extension RelayConnectionHandler {
    /// A relay link's preamble: the connection (its slot in the limiter included) passes to
    /// an `IncomingLinkHandler`, with the bytes that came after the preamble.
    func handOverToLink(_ remaining: [UInt8], context: ChannelHandlerContext) {
        // A relay kept apart (links: off) answers no link: closed without a byte.
        guard shared.linksEnabled else {
            logger.info("closing a relay-link connection: links are off")
            close(context)
            return
        }
        handshakeTimer?.cancel()
        handshakeTimer = nil
        frameTimer?.cancel()
        frameTimer = nil
        handedOver = true
        let link = IncomingLinkHandler(shared: shared, peer: peer, logger: logger, initialBytes: remaining)
        do {
            try context.pipeline.syncOperations.addHandler(link, position: .after(self))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            handedOver = false
            close(context)
        }
    }

    /// The targets homed at other relays, by relay; nil when every target is homed here.
    func remoteTargets(_ targets: [PrekeyDispenser.Target]) -> [String: [PrekeyDispenser.Target]]? {
        guard shared.federation != nil else { return nil }
        let snapshot = shared.directory.snapshot
        var remote: [String: [PrekeyDispenser.Target]] = [:]
        for target in targets {
            guard let member = target.member, let relay = Federation.destination(of: member.name, in: snapshot) else { continue }
            remote[relay, default: []].append(target)
        }
        return remote.isEmpty ? nil : remote
    }

    /// Members homed here come from this relay's store, the others from their home relays;
    /// the answer keeps the order asked. This relay applies the device's member rate first;
    /// the home relay applies its own limits to the link. A link that is down gives those
    /// members a bundle with an error: the device's message waits in its outbox.
    func proxyPrekeyFetch(
        requestID: UInt64, device: AgreementPublicKey, targets: [PrekeyDispenser.Target], remote: [String: [PrekeyDispenser.Target]],
        envelopeKeyOnly: Bool, context: ChannelHandlerContext
    ) {
        guard let federation = shared.federation else { return }
        let remoteCount = remote.values.reduce(0) { $0 + $1.count }
        guard shared.prekeyDispenser.allowProxied(device: device, count: remoteCount) else {
            perform(state.send(RelayRequestProcessor.encode(RelayRequestProcessor.error(requestID, RelayError(
                .rateLimited, code: "rate-limited", message: "too many prekey bundles fetched; try again in a minute")))), context: context)
            return
        }
        let remoteNames = Set(remote.values.joined().map(\.asked))
        let local = targets.filter { !remoteNames.contains($0.asked) }
        let eventLoop = context.eventLoop
        var parts: [EventLoopFuture<[String: WirePrekeyBundle]>] = []
        if !local.isEmpty {
            let localAnswer: EventLoopFuture<WireRelayMessage>
            switch shared.prekeyDispenser.fetch(requestID: requestID, device: device, targets: local, envelopeKeyOnly: envelopeKeyOnly) {
            case .reply(let reply): localAnswer = eventLoop.makeSucceededFuture(reply)
            case .work(let work): localAnswer = shared.threadPool.runIfActive(eventLoop: eventLoop, work)
            }
            parts.append(localAnswer.map { message in
                guard case .prekeyBundles(let bundles)? = message.body else { return [:] }
                return Dictionary(bundles.bundles.map { ($0.member, $0) }, uniquingKeysWith: { first, _ in first })
            })
        }
        for (relay, members) in remote {
            var request = WirePrekeyFetch()
            request.members = members.map(\.asked)
            request.envelopeKeyOnly = envelopeKeyOnly
            let fetch = request
            parts.append(federation.proxy(to: relay, .prekeyFetch(fetch)).hop(to: eventLoop).map { reply in
                guard case .prekeyBundles(let bundles)? = reply.body else { return [:] }
                var answered: [String: WirePrekeyBundle] = [:]
                for bundle in bundles.bundles where fetch.members.contains(bundle.member) {
                    var bundle = bundle
                    // Unknown there but active and homed there here: the relays' directories
                    // differ for now; the device waits rather than give up on the member.
                    if bundle.error == .unknownRecipient { bundle.error = .internal }
                    answered[bundle.member] = bundle
                }
                return answered
            }.recover { _ in [:] })
        }
        let answer = EventLoopFuture.whenAllComplete(parts, on: eventLoop).map { results in
            var found: [String: WirePrekeyBundle] = [:]
            for case .success(let part) in results { found.merge(part) { first, _ in first } }
            var answer = WirePrekeyBundles()
            for target in targets {
                if let bundle = found[target.asked] {
                    answer.bundles.append(bundle)
                } else {
                    var bundle = WirePrekeyBundle()
                    bundle.member = target.asked
                    // The member's relay could not be asked now (its link is down).
                    bundle.error = target.member == nil ? .unknownRecipient : .internal
                    answer.bundles.append(bundle)
                }
            }
            return RelayRequestProcessor.message(requestID, .prekeyBundles(answer))
        }
        self.answer(requestID: requestID, context: context, failure: "could not read prekeys", answer)
    }
}

extension RelayConnectionHandler {
    /// Signed statuses; for ids this relay forwarded, the relay that took custody is asked
    /// too (over this relay's link, with the device's nonce), and its own signed statement
    /// replaces this relay's FORWARDED when it says more: expired undelivered there, or
    /// undeliverable. The device checks that statement with that relay's key.
    func status(requestID: UInt64, ids: [MessageID], nonce: [UInt8], context: ChannelHandlerContext) {
        let (store, keys, clock, federation) = (shared.store, shared.keys, shared.clock, shared.federation)
        let eventLoop = context.eventLoop
        let statuses = shared.threadPool.runIfActive(eventLoop: eventLoop) { try store.states(of: ids, now: clock()) }
            .flatMap { states -> EventLoopFuture<WireRelayMessage> in
                let own = RelayRequestProcessor.status(requestID, ids: ids, states: states, nonce: nonce, keys: keys)
                var forwarded: [String: [MessageID]] = [:]
                for (id, remembered) in states where remembered.state == .forwarded {
                    if let relay = remembered.forwardedTo { forwarded[relay, default: []].append(id) }
                }
                guard let federation, !forwarded.isEmpty else { return eventLoop.makeSucceededFuture(own) }
                let asks = forwarded.map { relay, ids -> EventLoopFuture<[Data: WireMessageStatus]> in
                    var request = WireStatusQuery()
                    request.ids = ids.map { Data($0.bytes) }
                    request.nonce = Data(nonce)
                    let query = request
                    return federation.proxy(to: relay, .statusQuery(query)).hop(to: eventLoop).map { reply in
                        guard case .status(let status)? = reply.body else { return [:] }
                        var final: [Data: WireMessageStatus] = [:]
                        for entry in status.statuses where entry.state == .expiredUndelivered || entry.state == .undeliverable {
                            if query.ids.contains(entry.id) { final[entry.id] = entry }
                        }
                        return final
                    }.recover { _ in [:] }
                }
                return EventLoopFuture.whenAllSucceed(asks, on: eventLoop).map { answers in
                    let theirs = answers.reduce(into: [Data: WireMessageStatus]()) { $0.merge($1) { first, _ in first } }
                    guard !theirs.isEmpty, case .status(var status)? = own.body else { return own }
                    status.statuses = status.statuses.map { theirs[$0.id] ?? $0 }
                    return RelayRequestProcessor.message(requestID, .status(status))
                }
            }
        answer(requestID: requestID, context: context, failure: "could not read message states", statuses)
    }
}
