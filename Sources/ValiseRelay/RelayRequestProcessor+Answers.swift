import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// The relay's answers as wire messages: acceptances and refusals, deliveries, signed
/// statuses, directory entries, errors.
extension RelayRequestProcessor {
    /// NOT_HOME's message, also sent when a move drops a connection.
    static func notHomeMessage(_ member: MemberName, home: String) -> String {
        "\(member)'s home relay is \(home): connect there"
    }

    static func notAllowed(_ requestID: UInt64) -> WireRelayMessage {
        error(requestID, RelayError(.notAllowed, code: "not-allowed", message: "an admin's key may only fetch and publish the directory"))
    }

    static func accepted(_ requestID: UInt64, id: MessageID, outcome: AcceptOutcome) -> WireRelayMessage {
        switch outcome {
        case .accepted(let expiresAt, let duplicate):
            var accepted = WireAccepted()
            accepted.id = Data(id.bytes)
            accepted.expiresAt = expiresAt
            accepted.duplicate = duplicate
            return message(requestID, .accepted(accepted))
        case .refused(.mailboxFull), .refused(.destinationFull):
            return error(requestID, RelayError(.mailboxFull, code: "mailbox-full", message: "the recipient's mailbox is full; try again later"))
        case .refused(.idInUse), .refused(.alreadyDone):
            return error(requestID, RelayError(.idInUse, code: "id-in-use", message: "this message id is in use by another message"))
        case .refused(.storageFull):
            return error(requestID, RelayError(.storageFull, code: "storage-full", message: "the relay's storage is full; it accepts nothing new for now"))
        }
    }

    static func deliver(_ envelope: StoredEnvelope) -> WireRelayMessage {
        var deliver = WireDeliver()
        deliver.id = Data(envelope.id.bytes)
        deliver.precedence = WirePrecedence(rawValue: envelope.precedence.rawValue) ?? .routine
        deliver.arrivedAt = envelope.arrivedAt
        deliver.expiresAt = envelope.expiresAt
        deliver.envelope = Data(envelope.body)
        // The class the relay applied (its maximum may have shortened the sender's).
        let applied = envelope.expiresAt &- envelope.arrivedAt
        deliver.ttl = TTLClass.allCases.last { $0.seconds <= applied }.map { WireTTLClass(rawValue: $0.rawValue + 1) ?? .hour } ?? .hour
        deliver.requestedTtl = WireTTLClass(rawValue: Int(envelope.requestedTTL)) ?? .default
        return message(0, .deliver(deliver))
    }

    static let mailboxIdle = message(0, .mailboxIdle(WireMailboxIdle()))

    /// Signed statuses: pending, expired undelivered, undeliverable with its reason, or
    /// unknown (never accepted, or no longer held: delivery itself is confirmed end to end,
    /// not by the relay).
    static func status(
        _ requestID: UInt64, ids: [MessageID], states: [MessageID: RememberedMessage], nonce: [UInt8], keys: RelayKeys
    ) -> WireRelayMessage {
        var status = WireStatus()
        for id in ids {
            var entry = WireMessageStatus()
            entry.id = Data(id.bytes)
            let remembered = states[id]
            switch remembered?.state {
            case .pending?: entry.state = .pending
            case .expiredUndelivered?: entry.state = .expiredUndelivered
            case .undeliverable?:
                entry.state = .undeliverable
                // The store keeps a reason for every undeliverable id (its migration gave
                // the older ones theirs).
                let reason = remembered?.reason ?? .recipientRevoked
                entry.reason = WireMessageStatus.UndeliverableReason(rawValue: reason.rawValue) ?? .recipientRevoked
            case .forwarded?:
                // Custody passed to the recipient's relay: the client asks there next.
                entry.state = .forwarded
                entry.forwardedTo = remembered?.forwardedTo ?? ""
            case .delivered?, nil: entry.state = .unknown
            }
            entry.time = entry.state == .unknown ? 0 : remembered?.since ?? 0
            let statement = MessageStatusStatement.bytes(relayKey: keys.noise.publicKey, status: entry, nonce: nonce)
            entry.signature = Data(keys.signing.signature(for: statement, purpose: MessageStatusStatement.purpose).bytes)
            status.statuses.append(entry)
        }
        return message(requestID, .status(status))
    }

    /// Entries from `fetch.since`, bounded; a revoked device sees only the first `upTo`
    /// (through its revocation) and no checkpoint (which covers a later head).
    func entries(_ fetch: WireDirectoryFetch, _ directory: RelayDirectory.Snapshot, upTo visible: Int? = nil) -> WireDirectoryEntries {
        Self.entries(fetch, directory, upTo: visible, maximumEntriesPerFetch: maximumEntriesPerFetch)
    }

    static func entries(
        _ fetch: WireDirectoryFetch, _ directory: RelayDirectory.Snapshot, upTo visible: Int? = nil, maximumEntriesPerFetch: Int
    ) -> WireDirectoryEntries {
        let count = min(visible ?? directory.count, directory.count)
        var answer = WireDirectoryEntries()
        answer.since = fetch.since
        answer.directoryCount = UInt64(count)
        if visible == nil {
            answer.checkpoint = directory.checkpoint.map { Data($0.encoded()) } ?? Data()
        }
        guard fetch.since < UInt64(count) else { return answer }
        let limit = fetch.limit == 0 ? maximumEntriesPerFetch : min(Int(fetch.limit), maximumEntriesPerFetch)
        var bytes = 0
        for entry in directory.encodedEntries[Int(fetch.since)..<count].prefix(limit) {
            if bytes + entry.count > Self.maximumFetchBytes && !answer.entries.isEmpty { break }
            bytes += entry.count
            answer.entries.append(Data(entry))
        }
        return answer
    }

    static func published(_ requestID: UInt64, _ result: RelayDirectory.Published) -> WireRelayMessage {
        var published = WireDirectoryPublished()
        published.directoryCount = UInt64(result.count)
        published.directoryHead = Data(result.head.bytes)
        return message(requestID, .directoryPublished(published))
    }

    static func message(_ requestID: UInt64, _ body: WireRelayMessage.OneOf_Body) -> WireRelayMessage {
        var message = WireRelayMessage()
        message.requestID = requestID
        message.body = body
        return message
    }

    static func error(_ requestID: UInt64, _ error: RelayError) -> WireRelayMessage {
        var wire = WireError()
        wire.code = WireErrorCode(rawValue: error.protocolCode.rawValue) ?? .internal
        wire.message = error.message
        return message(requestID, .error(wire))
    }

    static func encode(_ message: WireRelayMessage) -> [UInt8] { WireCodec.encode(message) }
}
