#if Postgres
import Logging
import PostgresNIO
import ValiseStore

/// What a node tells the others after a commit, as NOTIFY payloads on one channel
/// (docs/OPERATIONS.md): one line per item, `m <mailbox>`, `d <relay>`, `dir`, or `*` for
/// "look at everything". A payload that would pass PostgreSQL's 8000-byte limit is `*`.
enum PostgresAnnouncement {
    /// `valise_queue_<schema>`: a NOTIFY reaches every session of the database, so each
    /// store's schema has a channel of its own (a database may hold several relays' schemas,
    /// and the tests' schemas share one database).
    static func channel(schema: String) -> String { "valise_queue_" + schema }
    /// Below PostgreSQL's limit of 8000 bytes, with room to spare.
    static let maximumPayloadBytes = 7_000

    static func payload(mailboxes: some Sequence<Mailbox>, destinations: some Sequence<String>, directory: Bool = false) -> String? {
        var lines: [String] = []
        var bytes = 0
        for mailbox in Set(mailboxes) {
            lines.append("m " + mailbox.name)
            bytes += mailbox.name.utf8.count + 3
        }
        for destination in Set(destinations) {
            lines.append("d " + destination)
            bytes += destination.utf8.count + 3
        }
        if directory {
            lines.append("dir")
            bytes += 4
        }
        if lines.isEmpty { return nil }
        return bytes > maximumPayloadBytes ? "*" : lines.joined(separator: "\n")
    }

    /// The changes a payload announces; anything unreadable means "look at everything".
    static func changes(_ payload: String) -> [QueueChange] {
        var mailboxes: [Mailbox] = []
        var destinations: [String] = []
        var directory = false
        for line in payload.split(separator: "\n") {
            if line.hasPrefix("m "), line.count > 2 {
                mailboxes.append(Mailbox(String(line.dropFirst(2))))
            } else if line.hasPrefix("d "), line.count > 2 {
                destinations.append(String(line.dropFirst(2)))
            } else if line == "dir" {
                directory = true
            } else {
                return [.everything]
            }
        }
        var changes: [QueueChange] = []
        if !mailboxes.isEmpty { changes.append(.mailboxes(mailboxes)) }
        if !destinations.isEmpty { changes.append(.destinations(destinations)) }
        if directory { changes.append(.directory) }
        return changes.isEmpty ? [.everything] : changes
    }

    /// Sends the announcement inside the caller's transaction: PostgreSQL delivers it at
    /// commit, and never if the transaction rolls back.
    static func announce(_ payload: String?, schema: String, on connection: PostgresConnection, logger: Logger) async throws {
        guard let payload else { return }
        _ = try await connection.rows("SELECT pg_notify(\(channel(schema: schema)), \(payload))", logger: logger)
    }
}
#endif
