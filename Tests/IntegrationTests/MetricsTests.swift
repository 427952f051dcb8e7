import Foundation
import Testing
import ValiseCrypto
import ValiseWire

// The Prometheus endpoint of a real valised (issue 18), scraped while devices send, receive
// and acknowledge: the counters and the queue's gauges follow the traffic, the commit
// histograms fill, and no label value names a member, a key or an address.

@Suite("Metrics: the Prometheus endpoint during traffic (real valised)", .serialized)
struct MetricsTests {
    static let alice = "alice@jakarta"
    static let bob = "bob@jakarta"

    /// One scrape: the samples by series (`name{labels}`), and every label value.
    struct Scrape {
        let text: String
        var samples: [String: Double] = [:]
        var labelValues: [(name: String, value: String)] = []

        init(_ text: String) {
            self.text = text
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
                let series = String(line[..<space])
                samples[series] = value
                guard let open = series.firstIndex(of: "{") else { continue }
                for pair in series[series.index(after: open)..<series.index(before: series.endIndex)].split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    if parts.count == 2 { labelValues.append((String(parts[0]), String(parts[1].dropFirst().dropLast()))) }
                }
            }
        }

        subscript(_ series: String) -> Double { samples[series] ?? -1 }
    }

    /// GET /metrics over a raw loopback connection; the relay answers and closes.
    static func scrape(port: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> Scrape {
        let socket = try HostileSocket(from: "127.0.0.1", to: port, preamble: nil)
        defer { socket.close() }
        socket.send(Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        let outcome = socket.waitForClose(within: 10)
        let text = String(decoding: outcome.received, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), "scrape: \(text.prefix(200))", sourceLocation: sourceLocation)
        #expect(text.contains("content-type: text/plain; version=0.0.4"), sourceLocation: sourceLocation)
        guard let body = text.range(of: "\r\n\r\n") else { return Scrape("") }
        return Scrape(String(text[body.upperBound...]))
    }

    /// Scrapes (bounded, 10 s) until `condition` holds; the store's figures are read at most
    /// once a second, so a gauge may lag the traffic by that much.
    static func scrape(port: Int, until failure: String, _ condition: (Scrape) -> Bool) async throws -> Scrape {
        let deadline = Date().addingTimeInterval(10)
        var last = try scrape(port: port)
        while !condition(last) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
            last = try scrape(port: port)
        }
        #expect(condition(last), "\(failure):\n\(last.text)")
        return last
    }

    @Test("sends, deliveries, acks, queue depth and commit histograms follow the traffic; labels name nobody")
    func scrapeDuringTraffic() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob], relayEnvironment: ["VALISED_METRICS_LISTEN": "127.0.0.1:0"])
        let port = try Self.metricsPort(world.relay)

        // Alice sends while bob is away: the envelopes wait in the queue.
        let alice = try await QueueDevice(world: world, member: Self.alice)
        var ids: [Data] = []
        for _ in 0..<5 {
            let id = QueueFixture.id()
            try await alice.sendAccepted(id, to: Self.bob, envelope: QueueFixture.bytes(1000))
            ids.append(Data(id))
        }
        let queued = try await Self.scrape(port: port, until: "five envelopes queued") {
            $0["valise_queue_envelopes"] == 5 && $0["valise_queue_mailboxes"] == 1
        }
        #expect(queued["valise_sends_accepted_total"] == 5)
        #expect(queued["valise_queue_bytes"] >= 5000)
        #expect(queued["valise_queue_oldest_age_seconds"] >= 0)
        #expect(queued["valise_connections_open{role=\"device\"}"] == 1, "alice's connection")
        #expect(queued["valise_connections_accepted_total"] >= 1)
        #expect(queued["valise_handshakes_total{result=\"completed\"}"] >= 2, "the admin's publish and alice")
        #expect(queued["valise_commit_batch_size_count"] >= 1 && queued["valise_commit_batch_size_count"] <= 5)
        #expect(queued["valise_commit_batch_size_sum"] == 5, "each send is one request of some commit")
        #expect(queued["valise_commit_seconds_count"] == queued["valise_commit_batch_size_count"])
        #expect(queued["valise_commit_seconds_sum"] > 0, "a commit takes time: its fsync at least")
        #expect(queued["valise_commit_seconds_bucket{le=\"+Inf\"}"] == queued["valise_commit_seconds_count"])
        #expect(queued["valise_checkpoint_warn_after_seconds"] > 0)
        #expect(queued["valise_checkpoint_refuse_after_seconds"] >= queued["valise_checkpoint_warn_after_seconds"])
        #expect(queued["valise_refusals_total{reason=\"sendRate\"}"] == 0)

        // Bob comes, takes the five and acknowledges them, while alice is still connected.
        let bob = try await QueueDevice(world: world, member: Self.bob)
        try await bob.fetch()
        let delivered = await bob.deliveries(atLeast: 5)
        #expect(Set(delivered.map(\.id)) == Set(ids))
        let during = try Self.scrape(port: port)
        #expect(during["valise_deliveries_total"] == 5)
        #expect(during["valise_connections_open{role=\"device\"}"] == 2)
        try await bob.ack(delivered.map(\.id))
        let acknowledged = try await Self.scrape(port: port, until: "five acks, an empty queue") {
            $0["valise_acks_total"] == 5 && $0["valise_queue_envelopes"] == 0
        }
        #expect(acknowledged["valise_sends_accepted_total"] == 5)
        #expect(acknowledged["valise_commit_batch_size_sum"] >= 6, "the sends, and the acknowledgement")

        // No label value is a member's name, a key or an address: each comes from a fixed set
        // (or is a histogram bucket's bound).
        let allowed: [String: Set<String>] = [
            "role": ["device", "admin", "relay", "handshaking"], "state": ["waiting", "connecting", "handshaking", "up", "stopped"],
            "result": ["completed", "failed"],
            "reason": Set(try Self.reasons(world: world)),
        ]
        #expect(acknowledged.labelValues.count { $0.name == "reason" } >= 20, "every limit has its counter, even at 0")
        for (name, value) in acknowledged.labelValues {
            if name == "le" {
                #expect(value == "+Inf" || Double(value) != nil, "bucket bound \(value)")
            } else {
                #expect(allowed[name]?.contains(value) == true, "label \(name)=\"\(value)\" is not from a fixed set")
            }
        }
        var forbidden = [Self.alice, Self.bob, "alice", "bob", "jakarta", "127.0.0.1"]
        for member in [Self.alice, Self.bob] {
            let key = try world.transportKey(member).publicKey.bytes
            forbidden.append(Hex.encode(key))
            forbidden.append(String(Hex.encode(key).prefix(16)))
        }
        for text in forbidden { #expect(!acknowledged.text.contains(text), "the exposition contains \(text)") }

        await alice.close()
        await bob.close()
        #expect(world.relay.stop() == 0, "the relay and its endpoint stop on SIGTERM:\n\(world.relay.log)")
    }

    /// The port of a relay's metrics endpoint, from its "valised metrics on 127.0.0.1:PORT" line.
    static func metricsPort(_ relay: RelayProcess, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        let line = try #require(relay.line(startingWith: "valised metrics on "), "no metrics line:\n\(relay.log)", sourceLocation: sourceLocation)
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0) }, sourceLocation: sourceLocation)
        #expect(line == "valised metrics on 127.0.0.1:\(port)", sourceLocation: sourceLocation)
        return port
    }

    @Test("relay links by state, linked relays' connections, and a backlog for a relay that is down, labelled by its directory name")
    func federation() async throws {
        let world = try FederationWorld(relayEnvironment: ["VALISED_METRICS_LISTEN": "127.0.0.1:0"])
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try world.converse(alice, bob)
        let port = try Self.metricsPort(try #require(world.relays["jakarta"]))
        let linked = try await Self.scrape(port: port, until: "both of jakarta's links up, the other relays linked in") {
            $0["valise_relay_links{state=\"up\"}"] == 2 && $0["valise_connections_open{role=\"relay\"}"] >= 1
        }
        #expect(linked["valise_forwards_completed_total"] >= 1, "the conversation's messages left jakarta for geneva")

        world.stopRelay("geneva")
        try world.member(alice, ["send", "--to", bob, "--precedence", "routine", "while geneva is down"])
        let behind = try await Self.scrape(port: port, until: "one envelope waits for geneva, its link is not up") {
            $0["valise_forwarding_envelopes{relay=\"geneva\"}"] == 1 && $0["valise_relay_links{state=\"up\"}"] == 1
        }
        #expect(behind["valise_forwarding_bytes{relay=\"geneva\"}"] > 0)
        #expect(behind["valise_forwarding_oldest_age_seconds{relay=\"geneva\"}"] >= 0)
        let relays = behind.labelValues.filter { $0.name == "relay" }.map(\.value)
        #expect(!relays.isEmpty && relays.allSatisfy { FederationWorld.relayNames.contains($0) }, "relay labels: \(relays)")
        #expect(!behind.text.contains("127.0.0.1"), "no relay's address is a label")
    }

    /// The limits `valised status` knows (limits.json): the only reasons a refusal may name.
    static func reasons(world: RelayWorld) throws -> [String] {
        let limits = try #require(try world.queueStatus()["limits"] as? [String: Any])
        let counts = try #require(limits["counts"] as? [String: Int])
        return Array(counts.keys)
    }

    @Test("a metrics port already taken stops the start with one line that says so")
    func portTaken() throws {
        let world = try RelayWorld(members: [Self.alice])
        #expect(world.relay.stop() == 0)
        let (taken, port) = try Loopback.listen("a port taken")
        defer { close(taken) }
        let started = try RelayProcess.launch(
            ValiseCLI.executable("valised"), [], directory: world.path("relay"), logPath: world.path("taken.log"),
            environment: ["VALISED_METRICS_LISTEN": "127.0.0.1:\(port)"])
        defer { close(started.stdout) }
        let status = started.child.wait(until: Date().addingTimeInterval(20))
        let log = (try? String(contentsOfFile: world.path("taken.log"), encoding: .utf8)) ?? ""
        #expect(status == 1, "exit status \(status):\n\(log)")
        #expect(log.contains("valised: error: cannot serve metrics on 127.0.0.1:\(port): Address already in use"), "\(log)")
        #expect(!log.contains("errno"), "no library internals: \(log)")
    }

    @Test("off by default: no metrics line, nothing bound")
    func offByDefault() throws {
        let world = try RelayWorld(members: [Self.alice])
        #expect(world.relay.line(startingWith: "valised metrics on ", within: 0.5) == nil)
        #expect(!world.relay.log.contains("metrics endpoint listening"))
    }
}
