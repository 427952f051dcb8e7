import Foundation
import ValiseCrypto
public import ValiseStore
import ValiseDirectory

/// A sent message and where it stands.
public struct SentMessage: Sendable {
    public let id: [UInt8]
    public let to: String
    public let precedence: UInt8
    public let createdAt: UInt64
    public let state: OutboxState
    public let changedAt: UInt64
    public let expiresAt: UInt64?
    /// Why it is undeliverable, when known.
    public let undeliverableReason: UndeliverableReason?
    /// The relay that took custody, when forwarded.
    public let forwardedTo: String?
    /// The circular it is part of: its id and the selector it was sent to.
    public var circular: [UInt8]? = nil
    public var selector: String? = nil

    public var idHex: String { Hex.encode(id) }
    public var precedenceName: String { (Precedence(rawValue: Int(precedence)) ?? .routine).name }

    /// The state as a circular's counts name it (`SentState`).
    public var sentState: SentState {
        switch state {
        case .unsealed, .sealed: .waiting
        case .accepted: .accepted
        case .forwarded: .forwarded
        case .delivered: .delivered
        case .expired: .expired
        case .failed: .undeliverable
        }
    }

    /// The state as `valise sent` names it.
    public var stateName: String {
        switch state {
        case .unsealed, .sealed: "waiting"
        case .accepted: "accepted"
        case .delivered: "delivered"
        case .expired: "expired-undelivered"
        case .failed: undeliverableReason.map { "undeliverable (\($0.name))" } ?? "undeliverable"
        case .forwarded: "forwarded"
        }
    }
}

extension Messenger {
    /// The inbox in the order this device received it.
    public func inbox(unreadOnly: Bool) throws(ClientError) -> [InboxMessage] {
        try storeOperation("read the inbox", write: false) { tx in
            try tx.inbox(unreadOnly: unreadOnly).map { item in try message(item) }
        }
    }

    /// One message, by its id or an unambiguous prefix of it (at least 4 hex digits);
    /// marks it read.
    public func read(_ prefix: String) throws(ClientError) -> InboxMessage {
        let wanted = prefix.lowercased()
        guard wanted.count >= 4, wanted.allSatisfy(\.isHexDigit) else {
            throw .usage("bad-message-id", "\(prefix) is not a message id (at least 4 hex digits, as 'valise inbox' shows)")
        }
        return try storeOperation("read a message") { tx -> InboxMessage in
            let matches = try tx.inbox().filter { Hex.encode($0.id).hasPrefix(wanted) }
            guard let item = matches.first else { throw ClientError.usage("no-such-message", "no message in the inbox has the id \(prefix)") }
            guard matches.count == 1 else { throw ClientError.usage("ambiguous-message-id", "\(prefix) matches \(matches.count) messages; give more of the id") }
            try tx.markRead(id: item.id)
            return try message(item, read: true)
        }
    }

    /// A stored message for display; the key-change flag it was received with comes back
    /// with the sender's fingerprint as the directory shows it now.
    private func message(_ item: InboxItem, read: Bool? = nil) throws -> InboxMessage {
        let record = try JSONDecoder().decode(InboxRecord.self, from: Data(item.data))
        var change: KeyChange?
        if record.keysChanged == true, let name = try? MemberName(record.from) {
            change = KeyChange(member: name, fingerprint: state.members[name]?.fingerprint.description ?? "unknown (no longer in the directory)")
        }
        return InboxMessage(
            id: item.id, from: record.from, precedence: item.precedence, sentAt: record.sentAt, receivedAt: item.receivedAt, read: read ?? item.read,
            text: record.text, keysChanged: change, directoryNote: record.directoryNote, circular: record.circular, attachmentCount: record.attachments?.count ?? 0)
    }

    /// Every message this device sent, oldest first.
    public func sent() throws(ClientError) -> [SentMessage] {
        try storeOperation("read the outbox", write: false) { tx in
            try tx.sentMessages().map { item in
                let record = try item.record()
                return SentMessage(
                    id: item.id, to: record.to, precedence: item.precedence, createdAt: item.createdAt, state: item.state,
                    changedAt: item.changedAt, expiresAt: item.expiresAt, undeliverableReason: item.undeliverableReason,
                    forwardedTo: item.forwardedTo, circular: record.circular.flatMap { Hex.decode($0) }, selector: record.selector)
            }
        }
    }

    /// Signed prekeys, envelope keys, one-time prekeys, and KEM prekeys (one-time and
    /// last-resort) this device holds, current and kept for messages in flight.
    public func prekeyCounts() throws(ClientError) -> (signed: Int, envelope: Int, oneTime: Int, oneTimeKEM: Int, lastResortKEM: Int) {
        try storeOperation("read the prekeys", write: false) { tx in
            (try tx.prekeyCount(.signed), try tx.prekeyCount(.xwingEnvelope), try tx.prekeyCount(.oneTime),
             try tx.prekeyCount(.kemOneTime), try tx.prekeyCount(.kemLastResort))
        }
    }
}
