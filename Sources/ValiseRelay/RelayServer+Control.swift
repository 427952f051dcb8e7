import Foundation
import Logging
import ValiseCrypto
import ValiseStore
#if canImport(Glibc)
import Glibc
#endif

extension RelayServer {
    /// What the control socket needs of a running relay.
    struct ControlTargets: Sendable {
        let store: any EnvelopeStore
        let registry: ConnectionRegistry
        let mailboxes: MailboxRegistry
        let federation: Federation
        let since: UInt64
        let logger: Logger
    }

    /// Answers the control socket's requests (on its thread: the store's calls block).
    static func control(_ request: ControlRequest, targets: ControlTargets) -> ControlResponse {
        switch request.command {
        case .status:
            var connections = Dictionary(uniqueKeysWithValues: targets.registry.openByRole.map { ($0.key.rawValue, $0.value) })
            // Incoming links are in the registry; this relay's own links that are up, too.
            connections[ConnectionRole.relay.rawValue, default: 0] += targets.federation.status.count { $0.state == "up" }
            return ControlResponse(status: ControlStatus(processID: getpid(), since: targets.since, connections: connections))
        case .list:
            guard let queue = targets.store as? any OperatorQueue else { return ControlResponse(error: "this relay's store has no operator queue") }
            let limit = min(max(request.limit ?? ControlProtocol.maximumListed, 0), ControlProtocol.maximumListed)
            do {
                let envelopes = try queue.queued(mailbox: request.mailbox.map(Mailbox.init), limit: limit, now: WallClock.seconds())
                return ControlResponse(envelopes: envelopes.map(ControlEnvelope.init))
            } catch {
                return ControlResponse(error: error.message)
            }
        case .hold, .release, .delete:
            return act(request, targets: targets)
        }
    }

    private static func act(_ request: ControlRequest, targets: ControlTargets) -> ControlResponse {
        guard let queue = targets.store as? any OperatorQueue else { return ControlResponse(error: "this relay's store has no operator queue") }
        let asked = request.ids ?? []
        guard !asked.isEmpty, asked.count <= ControlProtocol.maximumIDs else {
            return ControlResponse(error: "give between 1 and \(ControlProtocol.maximumIDs) ids")
        }
        let ids = asked.map(MessageID.init(hex:))
        let valid = ids.compactMap { $0 }
        let done: [MessageID: QueuedEnvelope]
        do {
            switch request.command {
            case .delete: done = try queue.deleteByOperator(valid, now: WallClock.seconds())
            default: done = try queue.setHeld(valid, held: request.command == .hold)
            }
        } catch {
            return ControlResponse(error: error.message)
        }
        let outcome = ["hold": "held", "release": "released", "delete": "deleted"][request.command.rawValue]!
        var results: [ControlResult] = []
        for (text, id) in zip(asked, ids) {
            guard let id else {
                results.append(ControlResult(id: text, outcome: "invalid"))
                continue
            }
            guard let envelope = done[id] else {
                results.append(ControlResult(id: id.description, outcome: "unknown"))
                continue
            }
            results.append(ControlResult(id: id.description, outcome: outcome))
            // The id only: at info level the log names no member (the mailbox is one).
            targets.logger.info("queue envelope \(outcome)", metadata: ["id": "\(id)", "operator.action": "\(request.command.rawValue)"])
            if request.command == .release {
                // Go now: its mailbox's connections, or its link, look in the store again.
                if let destination = envelope.destination {
                    targets.federation.wake(destination: destination)
                } else {
                    targets.mailboxes.wake(envelope.mailbox)
                }
            }
        }
        return ControlResponse(results: results)
    }
}

extension ControlEnvelope {
    init(_ envelope: QueuedEnvelope) {
        self.init(
            id: envelope.id.description, mailbox: envelope.mailbox.name, destination: envelope.destination, precedence: envelope.precedence.name,
            arrivedAt: envelope.arrivedAt, expiresAt: envelope.expiresAt, bytes: envelope.size, held: envelope.held)
    }
}

extension MessageID {
    /// 32 hexadecimal digits (either case), as `description` writes them; nil for anything else.
    init?(hex: String) {
        guard let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }
}
