public import NIOCore
public import ValiseCrypto
public import ValiseDirectory
import ValiseWire
import Foundation

/// Talking about the directory with a relay: which relay to use, fetching entries, and
/// publishing them.
public enum DirectorySync {
    /// A relay to connect to: its directory record (the pinned Noise key) and its addresses,
    /// tried in order; an override replaces the addresses, never the key.
    public struct Target: Sendable {
        public let relay: RelayRecord
        /// Never empty.
        public let endpoints: [Endpoint]

        public init(relay: RelayRecord, endpoints: [Endpoint]) {
            precondition(!endpoints.isEmpty, "a target has an address")
            self.relay = relay
            self.endpoints = endpoints
        }

        /// The relay's own addresses in the directory's order, or `address` alone.
        public init(relay: RelayRecord, address: String?) throws(ClientError) {
            var endpoints: [Endpoint] = []
            for text in address.map({ [$0] }) ?? relay.addresses { endpoints.append(try Endpoint(text)) }
            self.init(relay: relay, endpoints: endpoints)
        }

        /// The first address: the one tried first.
        public var host: String { endpoints[0].host }
        public var port: Int { endpoints[0].port }

        /// The addresses, for people: "hq.example:7400, hq2.example:7400".
        public var addressList: String { endpoints.map(\.description).joined(separator: ", ") }
    }

    /// `HOST:PORT`, parsed.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public let host: String
        public let port: Int

        public init(_ address: String) throws(ClientError) {
            (host, port) = try DirectorySync.parse(address)
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Picks the relay named `name` (or the only one) from the directory; `address`
    /// replaces its addresses.
    public static func target(in state: DirectoryState, name: String?, address: String?) throws(ClientError) -> Target {
        let relay: RelayRecord
        if let name {
            guard let named = state.relays[name] else {
                throw .usage("unknown-relay", "the directory lists no relay named \(name) (relays: \(state.relays.keys.sorted().joined(separator: ", ")))")
            }
            relay = named
        } else {
            let all = state.relays.values.sorted { $0.name < $1.name }
            guard let only = all.first else {
                throw ClientError(kind: .notSetUp, code: "no-relay", message: "the directory lists no relay yet; an administrator adds one with valise admin add-relay")
            }
            guard all.count == 1 else {
                throw .usage("which-relay", "the directory lists several relays (\(all.map(\.name).joined(separator: ", "))): choose one with --relay-name")
            }
            relay = only
        }
        return try Target(relay: relay, address: address)
    }

    /// `HOST:PORT` or `[IPv6]:PORT`.
    public static func parse(_ address: String) throws(ClientError) -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (1...65_535).contains(port), colon != address.startIndex else {
            throw .usage("invalid-address", "\(address) is not HOST:PORT")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    /// What the relay said on connecting.
    public struct Welcome: Sendable {
        /// How many directory entries the relay holds, and the newest one's hash.
        public let count: Int
        public let head: [UInt8]
        /// Whether the relay admitted this key as an admin's (else a device's).
        public let admittedAsAdmin: Bool
        public let relayName: String
        /// The home relay the relay names when it admitted this device as homed elsewhere
        /// (role *not home*): the relay's word, to be checked against the verified directory.
        public let notHomeSaysHome: String?
        /// The address that answered.
        public let endpoint: Endpoint
        /// The relay's per-device send rate and burst (0: not said), for `SendPacer`.
        public let sendsPerSecond: Double
        public let sendBurst: UInt32
        /// The largest blob the relay takes (0: none; a relay before attachments says 0).
        public let maximumBlobBytes: UInt64

        init(_ welcome: WireWelcome, endpoint: Endpoint) {
            count = Int(clamping: welcome.directoryCount)
            head = Array(welcome.directoryHead)
            admittedAsAdmin = welcome.role == .admin
            relayName = welcome.relayName
            // Unverified, and printed: printable ASCII only, as relay names are, and bounded.
            notHomeSaysHome = welcome.role == .notHome
                ? String(welcome.homeRelay.unicodeScalars.filter { (0x20..<0x7F).contains($0.value) }.prefix(64).map(Character.init))
                : nil
            self.endpoint = endpoint
            sendsPerSecond = welcome.sendsPerSecond
            sendBurst = welcome.sendBurst
            maximumBlobBytes = welcome.maxBlobBytes
        }
    }

    /// Connects to the first of the target's addresses that serves (a node that is down,
    /// answers UNAVAILABLE, or closes before the handshake completes is skipped; a relay
    /// that answers and refuses is not), runs `body`, and closes the connection whatever
    /// happens. A node that answers UNAVAILABLE during `body` stored nothing for that
    /// request: `body` runs again, from the start, at the next address (its requests are
    /// safe to repeat: a send's id makes a repeat a duplicate, never a second message).
    public static func withRelay<T: Sendable>(
        _ target: Target, clientKey: AgreementPrivateKey, timeout: TimeAmount = .seconds(10),
        _ body: (RelayClient, Welcome) async throws(ClientError) -> T
    ) async throws(ClientError) -> T {
        var failures: [(what: String, hint: String?, code: String)] = []
        for (index, endpoint) in target.endpoints.enumerated() {
            let more = index + 1 < target.endpoints.count
            let client: RelayClient
            let welcome: WireWelcome
            do {
                (client, welcome) = try await RelayClient.connect(
                    host: endpoint.host, port: endpoint.port, clientKey: clientKey, relayKey: target.relay.noiseKey, timeout: timeout)
            } catch where target.endpoints.count > 1 && movesOn(error) {
                failures.append(failure(error, at: endpoint))
                continue
            }
            do {
                let result = try await body(client, Welcome(welcome, endpoint: endpoint))
                await client.close()
                return result
            } catch {
                await client.close()
                guard more, error.code == "relay-unavailable" else { throw error }
                failures.append(failure(error, at: endpoint))
            }
        }
        // One hint for all: the first address's, which is the one devices try first.
        let hint = failures.first?.hint.map { "; \($0)" } ?? ""
        // One address that failed to prove the relay's key is worth as loud a failure as a
        // relay of one address (an impostor, or a cut connection); otherwise the common code.
        let codes = Set(failures.map(\.code))
        let code = codes.contains("relay-handshake") ? "relay-handshake" : codes.count == 1 ? codes.first ?? "relay-unreachable" : "relay-unreachable"
        let kind: ClientError.Kind = switch code {
        case "relay-handshake": .verification
        case "relay-busy": .busy
        default: .unreachable
        }
        throw ClientError(
            kind: kind, code: code,
            message: "cannot connect to relay \(target.relay.name) at any of its addresses (\(failures.map(\.what).joined(separator: ", ")))\(hint)")
    }

    /// Failures that another address of the same relay may not have: the node is down or
    /// cut off from its store, busy, or the connection ended before the relay proved its
    /// key (each address is held to the same pinned key, so moving on trusts nothing more).
    static func movesOn(_ error: ClientError) -> Bool {
        error.isConnectionLost || error.code == "relay-handshake"
    }

    /// One address's failure, for the message that names each.
    static func failure(_ error: ClientError, at endpoint: Endpoint) -> (what: String, hint: String?, code: String) {
        switch error.code {
        case "relay-unreachable":
            let unreachable = error.unreachable ?? ("\(endpoint) cannot be reached", nil)
            return (unreachable.what, unreachable.hint, error.code)
        case "relay-unavailable":
            return ("\(endpoint) answered UNAVAILABLE (that node cannot reach its store)", nil, error.code)
        default:
            return ("\(endpoint): \(error.message)", nil, error.code)
        }
    }

    /// Every entry the relay has from `since` on, and its newest checkpoint.
    public static func fetch(_ client: RelayClient, since: Int) async throws(ClientError) -> (entries: [DirectoryEntry], checkpoint: Checkpoint?, relayCount: Int) {
        var entries: [DirectoryEntry] = []
        var next = UInt64(since)
        var checkpoint: Checkpoint?
        var relayCount = 0
        while true {
            var fetch = WireDirectoryFetch()
            fetch.since = next
            let answer = try await client.request(.directoryFetch(fetch))
            guard case .directoryEntries(let batch) = answer.body, batch.since == next else {
                throw .failure("relay-protocol", "the relay answered a directory fetch with something else")
            }
            relayCount = Int(clamping: batch.directoryCount)
            if !batch.checkpoint.isEmpty {
                do {
                    checkpoint = try Checkpoint(decoding: Array(batch.checkpoint))
                } catch {
                    throw ClientError(error, file: "the relay's checkpoint")
                }
            }
            for bytes in batch.entries {
                do {
                    entries.append(try DirectoryEntry(decoding: Array(bytes)))
                } catch {
                    throw ClientError(error, file: "an entry from the relay")
                }
            }
            next += UInt64(batch.entries.count)
            if batch.entries.isEmpty || next >= batch.directoryCount { break }
        }
        return (entries, checkpoint, relayCount)
    }

    /// Publishes `entries` (and a checkpoint) and returns the relay's count and head after.
    public static func publish(_ client: RelayClient, entries: [DirectoryEntry], checkpoint: Checkpoint?) async throws(ClientError) -> (count: Int, head: [UInt8]) {
        var publish = WireDirectoryPublish()
        publish.entries = entries.map { Data($0.encoded()) }
        if let checkpoint { publish.checkpoint = Data(checkpoint.encoded()) }
        let answer = try await client.request(.directoryPublish(publish), timeout: .seconds(120))
        guard case .directoryPublished(let published) = answer.body else {
            throw .failure("relay-protocol", "the relay answered a publish with something else")
        }
        return (Int(clamping: published.directoryCount), Array(published.directoryHead))
    }
}
