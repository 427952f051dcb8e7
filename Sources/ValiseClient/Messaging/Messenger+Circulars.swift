import ValiseCrypto

/// Where a sent message stands, in the words a circular's counts use.
public enum SentState: String, CaseIterable, Sendable {
    case waiting, accepted, forwarded, delivered, expired, undeliverable
}

/// A circular as the sender sees it: one item, its recipients' messages, a count per state.
public struct SentCircular: Sendable {
    public let id: [UInt8]
    public let selector: String
    /// Each recipient's message, in the order written.
    public let messages: [SentMessage]

    public var idHex: String { Hex.encode(id) }
    public var precedenceName: String { messages.first?.precedenceName ?? "ROUTINE" }
    public var createdAt: UInt64 { messages.first?.createdAt ?? 0 }

    /// How many of its messages are in each state (states with none left out).
    public var counts: [SentState: Int] {
        messages.reduce(into: [:]) { $0[$1.sentState, default: 0] += 1 }
    }

    /// "accepted 2, delivered 1", in the states' order.
    public var countsDescription: String {
        let counts = self.counts
        return SentState.allCases.compactMap { state in counts[state].map { "\(state.rawValue) \($0)" } }.joined(separator: ", ")
    }
}

/// One line of `valise sent`: a message, or a circular standing for all of its messages.
public enum SentItem: Sendable {
    case message(SentMessage)
    case circular(SentCircular)
}

extension Messenger {
    /// What this device sent, oldest first, each circular as one item at the place of its
    /// first message.
    public func sentItems() throws(ClientError) -> [SentItem] {
        let messages = try sent()
        var groups: [[UInt8]: [SentMessage]] = [:]
        for message in messages { if let circular = message.circular { groups[circular, default: []].append(message) } }
        var items: [SentItem] = []
        var shown: Set<[UInt8]> = []
        for message in messages {
            guard let circular = message.circular else {
                items.append(.message(message))
                continue
            }
            guard shown.insert(circular).inserted, let members = groups[circular] else { continue }
            items.append(.circular(SentCircular(id: circular, selector: message.selector ?? "", messages: members)))
        }
        return items
    }

    /// The circular or message whose id starts with `prefix` (at least 4 hex digits, as
    /// `valise sent` shows them); a prefix that fits both a circular and a message, or
    /// several of either, is refused as ambiguous.
    public func sentItem(_ prefix: String) throws(ClientError) -> SentItem {
        let wanted = prefix.lowercased()
        guard wanted.count >= 4, wanted.allSatisfy(\.isHexDigit) else {
            throw .usage("bad-message-id", "\(prefix) is not a message or circular id (at least 4 hex digits, as 'valise sent' shows)")
        }
        let items = try sentItems()
        var matches: [SentItem] = []
        for item in items {
            switch item {
            case .message(let message):
                if message.idHex.hasPrefix(wanted) { matches.append(item) }
            case .circular(let circular):
                if circular.idHex.hasPrefix(wanted) { matches.append(item) }
                matches += circular.messages.filter { $0.idHex.hasPrefix(wanted) }.map(SentItem.message)
            }
        }
        guard let match = matches.first else { throw .usage("no-such-message", "no message or circular this device sent has the id \(prefix)") }
        guard matches.count == 1 else { throw .usage("ambiguous-message-id", "\(prefix) matches \(matches.count) sent messages or circulars; give more of the id") }
        return match
    }
}
