#if Postgres
import Foundation
import Testing
import ValiseStore

/// Two real valised nodes of ONE relay (issue 19): the same keys (node 2 runs on a copy of
/// node 1's `valised init` directory) and one PostgreSQL database, made fresh for the world
/// and dropped with it; the directory lists both addresses. The server comes from
/// VALISE_TEST_POSTGRES ("127.0.0.1:PORT", user valise, trust), as the store tests use it.
final class HighAvailabilityWorld {
    static var server: String? { ProcessInfo.processInfo.environment["VALISE_TEST_POSTGRES"] }

    let world: RelayWorld
    var node2: RelayProcess!
    let server: String
    let database: String
    let environment: [String: String]

    var node1: RelayProcess { world.relay }
    var nodes: [RelayProcess] { [node1, node2] }

    init(members: [String] = ["alice@jakarta", "bob@jakarta", "carol@nairobi"]) throws {
        server = try #require(Self.server, "VALISE_TEST_POSTGRES is not set")
        database = "valise_ha_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try Self.psql(server, database: "valise_test", "CREATE DATABASE \(database)")
        let colon = server.lastIndex(of: ":") ?? server.endIndex
        environment = [
            "VALISED_STORE_KIND": "postgres", "VALISED_STORE_POSTGRES_HOSTS": server, "VALISED_STORE_POSTGRES_DATABASE": database,
            "VALISED_STORE_POSTGRES_USER": "valise", "VALISED_STORE_POSTGRES_TLS": server[..<colon] == "127.0.0.1" ? "disable" : "require",
        ]
        world = try RelayWorld(members: members, relayEnvironment: environment, relayLogLevel: "info")
        // Node 2: the same relay keys and pinned directory, its own lock, socket and state files.
        let copy = try ValiseCLI.run(path: "/bin/cp", ["-a", world.path("relay"), world.path("relay-2")])
        #expect(copy.status == 0, "cp: \(copy.stderr)")
        for name in ["valised.lock", "control.socket", "limits.json", "links.json"] {
            try? FileManager.default.removeItem(atPath: world.path("relay-2/\(name)"))
        }
        node2 = try RelayProcess(directory: world.path("relay-2"), logPath: world.path("relay-2.log"), environment: environment, logLevel: "info")
        try world.valise(["admin", "set-relay-addresses", "--name", "hq", "--address", node1.address, "--address", node2.address] + world.org)
        try world.valise(["admin", "publish", "--relay", "hq", "--relay-address", node1.address] + world.org)
    }

    deinit {
        _ = node2?.stop()
        _ = world.relay?.stop()
        _ = try? Self.psql(server, database: "valise_test", "DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
    }

    /// Runs `sql` with psql as the cluster's user valise; the result's stdout, unaligned.
    @discardableResult
    static func psql(_ server: String, database: String, _ sql: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let colon = server.lastIndex(of: ":") ?? server.endIndex
        let port = colon < server.endIndex ? String(server[server.index(after: colon)...]) : "5432"
        let result = try ValiseCLI.run(
            path: "/usr/bin/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", String(server[..<colon]), "-p", port, "-U", "valise", "-d", database, "-c", sql],
            timeout: 30)
        #expect(result.status == 0, "psql \(sql): \(result.stderr)", sourceLocation: sourceLocation)
        return result.stdout
    }

    /// `valise ARGUMENTS --home MEMBER'S [--relay ADDRESS]` (receipts without delay).
    static func valise(
        _ arguments: [String], home: String, relay: String?, passphrase: String, expect status: Int32 = 0, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ValiseCLI.Result {
        let result = try ValiseCLI.run(
            arguments + ["--home", home] + (relay.map { ["--relay", $0] } ?? []),
            environment: ["VALISE_PASSPHRASE": passphrase, "VALISE_RECEIPT_DELAY": "0-0"])
        #expect(result.status == status, "valise \(arguments.joined(separator: " ")) at \(relay ?? "-"): \(result.stderr)", sourceLocation: sourceLocation)
        return result
    }

    /// Sends `texts` from one home to `recipient` through one node, the precedences in turn;
    /// the sent messages' ids. Strings only, so that senders can run on their own threads.
    static func sendAll(
        home: String, to recipient: String, relay: String, passphrase: String, texts: [(precedence: String, text: String)]
    ) -> [String] {
        var ids: [String] = []
        for (precedence, text) in texts {
            guard let result = try? valise(["send", "--to", recipient, "--precedence", precedence, "--json", text], home: home, relay: relay, passphrase: passphrase),
                  let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
                  let id = (object["messages"] as? [[String: Any]])?.first?["id"] as? String else { continue }
            ids.append(id)
        }
        return ids
    }

    /// The "New PRECEDENCE message SHORTID from …" lines of one sync, as (precedence, short id).
    static func newMessages(_ output: String) -> [(precedence: Precedence, shortID: String)] {
        output.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard words.count > 4, words[0] == "New", words[2] == "message",
                  let precedence = Precedence.allCases.first(where: { $0.name == words[1] }) else { return nil }
            return (precedence, String(words[3]))
        }
    }

    /// Backends of this world's database that are LISTENing (the nodes' dedicated
    /// connections for the queue's announcements), by process id.
    func listeningBackends() throws -> [String] {
        try Self.psql(server, database: "valise_test", """
            SELECT pid FROM pg_stat_activity WHERE datname = '\(database)' AND (application_name = 'valised-listen' OR query ILIKE 'LISTEN%')
            """).split(separator: "\n").map { String($0) }.filter { !$0.isEmpty }
    }

    /// Terminates those backends; how many there were.
    @discardableResult
    func killListeners() throws -> Int {
        let killed = try Self.psql(server, database: "valise_test", """
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = '\(database)' AND (application_name = 'valised-listen' OR query ILIKE 'LISTEN%')
            """)
        return killed.split(separator: "\n").filter { $0 == "t" }.count
    }
}

/// What sender threads hand back, under a lock.
final class SentIDs: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String] = []
    private var finished = 0

    func add(_ more: [String]) {
        lock.withLock {
            ids += more
            finished += 1
        }
    }

    var all: [String] { lock.withLock { ids } }
    var finishedSenders: Int { lock.withLock { finished } }
}
#endif
