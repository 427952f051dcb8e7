import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto
import ValiseStore

extension Valise {
    struct Sent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the messages this device sent, and where each stands.",
            discussion: """
                waiting: in this device's outbox, not yet taken by the relay. accepted: the \
                relay holds it for the recipient. delivered: the recipient's device confirmed \
                it stored it (an encrypted receipt, sent after a short random delay so that \
                its timing does not link you). expired-undelivered: the relay's signed status \
                says it expired before the recipient took it. undeliverable (recipient \
                revoked), (unknown recipient) or (deleted by the operator): it will never be \
                delivered, as this device knows or the relay's signed status says. forwarded: \
                the relay handed it to the recipient's relay. 'valise sync' brings receipts \
                and statuses up to date.

                A circular is one line, with how many of its messages are in each state; \
                'valise sent ID' with its id shows each recipient's, and with a message's id \
                that message alone.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: ArgumentHelp("A circular's or message's id (enough of its start to be unambiguous): show it in detail.", valueName: "id"))
        var id: String?

        func run() async throws {
            if let id {
                try show(id)
                return
            }
            let items = try reportingErrors { () throws(ClientError) -> [SentItem] in
                let (_, messenger) = try openOffline(options, now: Environment.now())
                defer { messenger.close() }
                return try messenger.sentItems()
            }
            if options.json {
                printJSON(SentJSON(items))
                return
            }
            guard !items.isEmpty else {
                print("No messages sent from this device yet.")
                return
            }
            print("ID        PRECEDENCE  TO                        WRITTEN (UTC)         STATE")
            for item in items {
                switch item {
                case .message(let message):
                    print(Self.row(id: message.id, precedence: message.precedenceName, to: message.to, written: message.createdAt, state: message.stateName))
                case .circular(let circular):
                    print(Self.row(
                        id: circular.id, precedence: circular.precedenceName, to: SentText.circularTo(circular),
                        written: circular.createdAt, state: circular.countsDescription))
                }
            }
        }

        static func row(id: [UInt8], precedence: String, to: String, written: UInt64, state: String) -> String {
            let to = to.padding(toLength: max(24, to.count), withPad: " ", startingAt: 0)
            let precedence = precedence.padding(toLength: 10, withPad: " ", startingAt: 0)
            return "\(MessageText.shortID(id))  \(precedence)  \(to)  \(MessageText.time(written))  \(state)"
        }

        private func show(_ id: String) throws {
            let item = try reportingErrors { () throws(ClientError) -> SentItem in
                let (_, messenger) = try openOffline(options, now: Environment.now())
                defer { messenger.close() }
                return try messenger.sentItem(id)
            }
            switch item {
            case .message(let message):
                if options.json {
                    printJSON(["message": SentJSON.Message(message)])
                    return
                }
                print("Id:         \(message.idHex)")
                print("To:         \(message.to)")
                print("Precedence: \(message.precedenceName)")
                print("Written:    \(MessageText.time(message.createdAt))")
                print("State:      \(message.stateName)")
                print("Changed:    \(MessageText.time(message.changedAt))")
                if let expires = message.expiresAt { print("Expires:    \(MessageText.time(expires))") }
                if let forwarded = message.forwardedTo { print("Forwarded:  to relay \(forwarded)") }
                if let circular = message.circular {
                    print("Circular:   \(MessageText.shortID(circular)) (\(MessageText.printable(message.selector ?? "")))")
                }
            case .circular(let circular):
                if options.json {
                    printJSON(["circular": SentJSON.Circular(circular, withMessages: true)])
                    return
                }
                print("Circular:   \(circular.idHex)")
                print("To:         \(SentText.circularTo(circular))")
                print("Precedence: \(circular.precedenceName)")
                print("Written:    \(MessageText.time(circular.createdAt))")
                print("States:     \(circular.countsDescription)")
                print("")
                print("ID        TO                        STATE                        CHANGED (UTC)")
                for message in circular.messages {
                    let to = message.to.padding(toLength: max(24, message.to.count), withPad: " ", startingAt: 0)
                    let state = message.stateName.padding(toLength: max(27, message.stateName.count), withPad: " ", startingAt: 0)
                    print("\(MessageText.shortID(message.id))  \(to)  \(state)  \(MessageText.time(message.changedAt))")
                }
            }
        }
    }
}

enum SentText {
    /// "mission:geneva (3 members)": the selector as the sender wrote it, and its size.
    static func circularTo(_ circular: SentCircular) -> String {
        "\(MessageText.printable(circular.selector)) (\(circular.messages.count) member\(circular.messages.count == 1 ? "" : "s"))"
    }
}

/// `valise sent --json`: {"messages": [{"id", "to", "precedence", "sent_at", "state", "changed_at", "expires_at",
/// "reason" (undeliverable only), "forwarded_to" (forwarded only), "circular" (a circular's messages: its id)}, …],
/// "circulars": [{"id", "selector", "precedence", "sent_at", "members", "states": {"waiting": N, …}, "messages": [id, …]}, …]}.
/// Every message is in "messages", those of circulars too, so that scripts reading it before
/// circulars existed see every message; "circulars" groups them.
struct SentJSON: Encodable {
    struct Message: Encodable {
        let id: String
        let to: String
        let precedence: String
        let sent_at: String
        let state: String
        let changed_at: String
        let expires_at: String?
        let reason: String?
        let forwarded_to: String?
        let circular: String?

        init(_ message: SentMessage) {
            id = message.idHex
            to = message.to
            precedence = message.precedenceName
            sent_at = Timestamp.rfc3339(message.createdAt)
            state = message.stateName
            changed_at = Timestamp.rfc3339(message.changedAt)
            expires_at = message.expiresAt.map(Timestamp.rfc3339)
            // Each is set only in its own state (the outbox clears them on every change).
            reason = message.undeliverableReason?.code
            forwarded_to = message.forwardedTo
            circular = message.circular.map(Hex.encode)
        }
    }

    /// A circular: `messages` holds its messages' ids in the list, the messages themselves
    /// in `valise sent ID --json`.
    struct Circular: Encodable {
        let id: String
        let selector: String
        let precedence: String
        let sent_at: String
        let members: Int
        /// Every state, with 0 for those none of its messages is in.
        let states: [String: Int]
        let messageIDs: [String]?
        let messages: [Message]?

        init(_ circular: SentCircular, withMessages: Bool) {
            id = circular.idHex
            selector = circular.selector
            precedence = circular.precedenceName
            sent_at = Timestamp.rfc3339(circular.createdAt)
            members = circular.messages.count
            let counts = circular.counts
            states = Dictionary(uniqueKeysWithValues: SentState.allCases.map { ($0.rawValue, counts[$0] ?? 0) })
            messageIDs = withMessages ? nil : circular.messages.map(\.idHex)
            messages = withMessages ? circular.messages.map(Message.init) : nil
        }

        enum CodingKeys: String, CodingKey {
            case id, selector, precedence, sent_at, members, states, messages
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(selector, forKey: .selector)
            try container.encode(precedence, forKey: .precedence)
            try container.encode(sent_at, forKey: .sent_at)
            try container.encode(members, forKey: .members)
            try container.encode(states, forKey: .states)
            if let messages {
                try container.encode(messages, forKey: .messages)
            } else {
                try container.encode(messageIDs ?? [], forKey: .messages)
            }
        }
    }

    let messages: [Message]
    let circulars: [Circular]

    init(_ items: [SentItem]) {
        var messages: [Message] = []
        var circulars: [Circular] = []
        for item in items {
            switch item {
            case .message(let message):
                messages.append(Message(message))
            case .circular(let circular):
                messages += circular.messages.map(Message.init)
                circulars.append(Circular(circular, withMessages: false))
            }
        }
        self.messages = messages
        self.circulars = circulars
    }
}
