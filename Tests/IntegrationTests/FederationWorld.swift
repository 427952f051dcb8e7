import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseTestSupport

/// An organisation with three relays on loopback (hq, jakarta, geneva), all real processes:
/// hq is set up first, the missions' relays start from a bundle that lists hq, and the admin
/// publishes once, to hq; the relays pass the entries on over their links. Members are
/// homed where their name says (`alice@jakarta` at jakarta), `carol@hq` at hq.
final class FederationWorld {
    static let relayNames = ["hq", "jakarta", "geneva"]

    let directory = TemporaryDirectory()
    let passphrase = "correct horse battery staple"
    let insecure = ["--kdf-profile", "insecure-test"]
    var relays: [String: RelayProcess] = [:]
    /// Each relay's port, kept across restarts (the directory names it).
    var ports: [String: Int] = [:]
    let members: [String]

    func path(_ name: String) -> String { directory.file(name) }
    var org: [String] { ["--org", path("org")] }

    /// With namespaces, each relay is a host of its own and commands that reach a relay run
    /// in that relay's namespace; without, everything is on 127.0.0.1.
    let network: NetworkNamespaces?

    /// `valise` (or `program`), in the namespace of `relay` when there are namespaces.
    func run(_ arguments: [String], in relay: String? = nil, program: String = "valise") throws -> ValiseCLI.Result {
        let environment = ["VALISE_PASSPHRASE": passphrase, "VALISE_RECEIPT_DELAY": "0-0"]
        if let network, let relay {
            return try ValiseCLI.run(path: NetworkNamespaces.ip, network.launcher(relay) + [ValiseCLI.executable(program)] + arguments,
                                     environment: environment)
        }
        return try ValiseCLI.run(arguments, environment: environment, program: program)
    }

    @discardableResult
    func valise(_ arguments: [String], in relay: String? = nil, expect status: Int32 = 0,
                sourceLocation: SourceLocation = #_sourceLocation) throws -> ValiseCLI.Result {
        let result = try run(arguments, in: relay)
        #expect(result.status == status, "valise \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        return result
    }

    func json(_ result: ValiseCLI.Result) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    /// The relay a member is homed at: the part of the name after `@`.
    static func home(of member: String) -> String { String(member.split(separator: "@").last ?? "") }

    init(members: [String] = ["alice@jakarta", "bob@geneva", "carol@hq"], relayEnvironment: [String: String] = [:],
         network: NetworkNamespaces? = nil) throws {
        self.members = members
        self.network = network
        if network != nil {
            // Each relay is its own host: the same port everywhere, known before it starts.
            for name in Self.relayNames { ports[name] = 7400 }
        }
        try valise(["admin", "init", "--name", "Ministry", "--admin-name", "registrar"] + org + insecure)
        try valise(["admin", "bundle", "--out", path("genesis.bundle")] + org)
        // Headquarters first: the missions' relays start knowing it, so they admit its link.
        try initRelay("hq", bundle: path("genesis.bundle"))
        try startRelay("hq", environment: relayEnvironment)
        try valise(["admin", "add-relay", "--name", "hq", "--address", address("hq"), "--relay-pub", path("hq/relay.pub")] + org)
        try valise(["admin", "bundle", "--out", path("hq.bundle")] + org)
        for name in ["jakarta", "geneva"] {
            try initRelay(name, bundle: path("hq.bundle"))
            try startRelay(name, environment: relayEnvironment)
            try valise(["admin", "add-relay", "--name", name, "--address", address(name), "--relay-pub", path("\(name)/relay.pub")] + org)
        }
        for member in members {
            try valise(["init", "--name", member, "--home", path(member)] + insecure)
            let fingerprint = try json(valise(["whoami", "--home", path(member), "--json"]))["fingerprint"] as? String ?? ""
            try valise(["admin", "enroll", path("\(member)/enrollment.request"), "--expect-fingerprint", fingerprint,
                        "--home-relay", Self.home(of: member)] + org)
        }
        try valise(["admin", "bundle", "--out", path("org.bundle")] + org)
        for member in members { try valise(["init", "--home", path(member), "--org-bundle", path("org.bundle")]) }
        // Once, to hq only.
        try valise(["admin", "publish", "--relay", "hq", "--relay-address", address("hq")] + org, in: "hq")
        let expected = try json(valise(["admin", "show", "--json"] + org))
        let count = try #require(expected["entries"] as? Int)
        try waitForDirectory(count: count)
        try waitForLinks()
    }

    /// Waits (bounded) until every running relay's links to the others are up (links.json):
    /// a relay learns of the others from entries pushed to it, and its first attempt may
    /// come before the other knows it (then it backs off for a second or two).
    func waitForLinks(seconds: Double = 60, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let up = try wait(seconds: seconds) {
            try relays.keys.allSatisfy { name in
                let links = (try status(name)["links"] as? [String: Any])?["links"] as? [[String: Any]] ?? []
                return links.count == relays.count - 1 && links.allSatisfy { $0["state"] as? String == "up" }
            }
        }
        if !up { Issue.record("the relay links did not all come up within \(seconds) s", sourceLocation: sourceLocation) }
    }

    func initRelay(_ name: String, bundle: String) throws {
        let result = try ValiseCLI.run(["init", "--dir", path(name), "--org-bundle", bundle, "--unencrypted-key"], program: "valised")
        #expect(result.status == 0, "valised init \(name): \(result.stderr)")
    }

    func startRelay(_ name: String, environment: [String: String] = [:]) throws {
        let logPath = path("\(name)-\(Date().timeIntervalSince1970).log")
        let relay: RelayProcess
        if let network {
            relay = try RelayProcess(
                directory: path(name), logPath: logPath, environment: environment, logLevel: "info", port: ports[name] ?? 0,
                program: NetworkNamespaces.ip, launcher: network.launcher(name) + [ValiseCLI.executable("valised")],
                host: network.hosts[name] ?? "127.0.0.1")
        } else {
            relay = try RelayProcess(directory: path(name), logPath: logPath, environment: environment, logLevel: "info", port: ports[name] ?? 0)
        }
        relays[name] = relay
        ports[name] = relay.port
    }

    func stopRelay(_ name: String) {
        #expect(relays[name]?.stop() == 0, "relay \(name) stops cleanly")
        relays[name] = nil
    }

    func address(_ relay: String) -> String { "\(network?.hosts[relay] ?? "127.0.0.1"):\(ports[relay] ?? 0)" }

    /// Every relay's status, as `valised status --json` reads it.
    func status(_ relay: String) throws -> [String: Any] {
        let result = try ValiseCLI.run(["status", "--dir", path(relay), "--json"], program: "valised")
        #expect(result.status == 0, "valised status \(relay): \(result.stderr)")
        return try json(result)
    }

    /// Envelopes `relay` holds for `destination` in its forwarding queue (`valised status`).
    func backlog(at relay: String, for destination: String) throws -> Int {
        ((try status(relay)["forwarding"] as? [String: Any])?[destination] as? [String: Any])?["envelopes"] as? Int ?? 0
    }

    /// Polls `condition` (bounded); whether it came true.
    @discardableResult
    func wait(seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try condition()
    }

    /// The number of directory entries each running relay holds (from its bundle file).
    func directoryCount(_ relay: String) throws -> Int {
        let result = try ValiseCLI.run(["directory", "verify", path("\(relay)/organisation.bundle"), "--json"])
        guard result.status == 0, let object = try? json(result) else { return 0 }
        return object["entries"] as? Int ?? 0
    }

    /// Waits (bounded) until every running relay holds `count` entries.
    func waitForDirectory(count: Int, seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let deadline = Date().addingTimeInterval(seconds)
        var counts: [String: Int] = [:]
        while Date() < deadline {
            counts = try Dictionary(uniqueKeysWithValues: relays.keys.map { ($0, try directoryCount($0)) })
            if counts.values.allSatisfy({ $0 == count }) { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        Issue.record("the relays did not converge on \(count) entries within \(seconds) s: \(counts)", sourceLocation: sourceLocation)
    }

    /// A member's command at its home relay.
    @discardableResult
    func member(_ member: String, _ arguments: [String], expect status: Int32 = 0, sourceLocation: SourceLocation = #_sourceLocation) throws -> ValiseCLI.Result {
        let home = Self.home(of: member)
        return try valise(arguments + ["--home", path(member), "--relay", address(home)], in: home, expect: status, sourceLocation: sourceLocation)
    }

    func memberJSON(_ member: String, _ arguments: [String], connect: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let home = Self.home(of: member)
        let full = arguments + ["--json", "--home", path(member)] + (connect ? ["--relay", address(home)] : [])
        return try json(valise(full, in: connect ? home : nil, sourceLocation: sourceLocation))
    }

    func inbox(_ member: String) throws -> [[String: Any]] {
        try memberJSON(member, ["inbox"], connect: false)["messages"] as? [[String: Any]] ?? []
    }

    func sent(_ member: String) throws -> [[String: Any]] {
        try memberJSON(member, ["sent"], connect: false)["messages"] as? [[String: Any]] ?? []
    }

    /// Both devices sync at their home relays (prekeys published there), and `from` sends
    /// `to` a first message, which `to` receives: a session exists between them.
    func converse(_ from: String, _ to: String) throws {
        try member(to, ["sync"])
        try member(from, ["sync"])
        try member(from, ["send", "--to", to, "--precedence", "routine", "before the cut"])
        try syncUntil(to) { $0.count == 1 }
    }

    /// Syncs `member` until `condition` holds of its inbox (bounded); the inbox at the end.
    @discardableResult
    func syncUntil(_ member: String, seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation,
                   _ condition: ([[String: Any]]) -> Bool) throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(seconds)
        var inbox: [[String: Any]] = []
        while Date() < deadline {
            _ = try run(["sync", "--home", path(member), "--relay", address(Self.home(of: member))], in: Self.home(of: member))
            inbox = try self.inbox(member)
            if condition(inbox) { return inbox }
            Thread.sleep(forTimeInterval: 0.3)
        }
        Issue.record("\(member)'s inbox did not reach the expected state within \(seconds) s: \(inbox)", sourceLocation: sourceLocation)
        return inbox
    }

    deinit {
        for relay in relays.values { _ = relay.stop() }
        // For a person debugging: VALISE_TEST_KEEP=DIR keeps the relays' logs and stores.
        if let keep = ProcessInfo.processInfo.environment["VALISE_TEST_KEEP"] {
            _ = try? ValiseCLI.run(path: "/bin/cp", ["-a", directory.path, keep + "/" + (directory.path as NSString).lastPathComponent])
        }
    }
}
