import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto

extension Valise {
    struct Inbox: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the messages this device has received.",
            discussion: """
                Lists what 'valise sync' or 'valise watch' brought in, in the order this device \
                received it (the relay delivers FLASH first, then IMMEDIATE, PRIORITY and \
                ROUTINE). A star marks unread messages; read one with 'valise read ID'. Works \
                without the relay: messages are kept on this computer, encrypted.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Flag(name: .long, help: "Only unread messages.")
        var unread = false

        func run() async throws {
            let messages = try reportingErrors { () throws(ClientError) -> [InboxMessage] in
                let (_, messenger) = try openOffline(options, now: Environment.now())
                defer { messenger.close() }
                return try messenger.inbox(unreadOnly: unread)
            }
            if options.json {
                printJSON(InboxJSON(messages: messages.map { InboxJSON.Message($0) }))
                return
            }
            guard !messages.isEmpty else {
                print(unread ? "No unread messages." : "No messages yet. 'valise sync' fetches new ones from the relay.")
                return
            }
            print("  ID        PRECEDENCE  FROM                      SENT (UTC)")
            for message in messages {
                let from = message.from.padding(toLength: max(24, message.from.count), withPad: " ", startingAt: 0)
                let precedence = message.precedenceName.padding(toLength: 10, withPad: " ", startingAt: 0)
                // A circular's line says so at its end; every other line is as it always was.
                let circular = message.circular.map { "  Circular to \(MessageText.printable($0))" } ?? ""
                print("\(message.read ? " " : "*") \(MessageText.shortID(message.id))  \(precedence)  \(from)  \(MessageText.time(message.sentAt))\(circular)")
            }
        }
    }

    struct Read: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a received message and mark it read.",
            discussion: "ID is the message id 'valise inbox' shows (its first 8 hex digits are enough)."
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: ArgumentHelp("The message id, or enough of its start to be unambiguous.", valueName: "id"))
        var id: String

        func run() async throws {
            let (message, attachments) = try reportingErrors { () throws(ClientError) -> (InboxMessage, [InboxAttachment]) in
                let (_, messenger) = try openOffline(options, now: Environment.now())
                defer { messenger.close() }
                let message = try messenger.read(id)
                return (message, message.attachmentCount > 0 ? try messenger.attachmentViews(of: message.id) : [])
            }
            if options.json {
                printJSON(InboxJSON.Message(message, withText: true, attachments: attachments))
                return
            }
            print("From:       \(message.from)")
            print("Precedence: \(message.precedenceName)")
            print("Sent:       \(MessageText.time(message.sentAt)) (the sender's clock)")
            print("Received:   \(MessageText.time(message.receivedAt))")
            print("Id:         \(message.idHex)")
            if let note = message.directoryNote { print("Directory:  \(note.text)") }
            if let circular = message.circular { print("Circular:   to \(MessageText.printable(circular))") }
            print("")
            print(MessageText.printable(message.text))
            AttachmentListing.print(attachments, messageID: message.id)
        }
    }
}

/// `valise inbox --json`: {"messages": [{"id", "from", "precedence", "sent_at", "received_at", "read",
/// "circular" (a circular's selector, only for one)}, …]}.
struct InboxJSON: Encodable {
    struct Message: Encodable {
        let id: String
        let from: String
        let precedence: String
        let sent_at: String
        let received_at: String
        let read: Bool
        /// Only in `valise read --json`.
        let text: String?
        /// The quiet note or the DIRECTORY FORK alarm about the sender's directory, if any.
        let directory_note: String?
        /// The selector of the circular it came in, as the sender wrote it.
        let circular: String?
        /// Only in `valise read --json`, for a message with files.
        let attachments: [InboxAttachment]?

        init(_ message: InboxMessage, withText: Bool = false, attachments: [InboxAttachment] = []) {
            id = message.idHex
            from = message.from
            precedence = message.precedenceName
            sent_at = Timestamp.rfc3339(message.sentAt)
            received_at = Timestamp.rfc3339(message.receivedAt)
            read = message.read
            text = withText ? message.text : nil
            directory_note = message.directoryNote?.text
            circular = message.circular
            self.attachments = attachments.isEmpty ? nil : attachments
        }
    }

    let messages: [Message]
}
