public import Foundation
import NIOConcurrencyHelpers

/// How often each of the relay's limits refused something or held a client back, and how
/// often it refused access (unknown or revoked keys, failed handshakes, requests a key may
/// not make), since the relay started. Written to `limits.json` in the relay's directory (`LimitCounters.fileName`)
/// about once a second while they change, so that `valised status` can show them; the file
/// holds counts only: no addresses, no keys, no member names.
public final class LimitCounters: Sendable {
    /// The limits, by the names `limits.json` and `valised status` use.
    public enum Limit: String, CaseIterable, Sendable {
        /// Connections refused: the relay's total (`limits.maxConnections`).
        case connections
        /// Connections refused: too many open from one address (`maxConnectionsPerAddress`).
        case connectionsPerAddress
        /// Connections refused: one address's handshake rate (`handshakesPerSecondPerAddress`).
        case handshakeRate
        /// Connections refused: no guarded memory left for another connection's keys.
        case secureMemory
        /// Sends answered RATE_LIMITED: one device's send rate (`sendsPerSecondPerDevice`).
        case sendRate
        /// Prekey fetches answered RATE_LIMITED (`prekeyFetchesPerMinute`).
        case prekeyFetchRate
        /// Directory publishes answered RATE_LIMITED: one key's publish rate
        /// (`directoryPublishesPerMinute`, `directoryPublishBurst`).
        case directoryPublishRate
        /// Sends answered MAILBOX_FULL (`queue.maxMessagesPerMailbox`, `maxBytesPerMailbox`).
        case mailboxFull
        /// Requests answered TOO_LARGE (an envelope over `maxEnvelopeBytes`, too many ids or
        /// prekeys in one request).
        case tooLarge
        /// Sends answered STORAGE_FULL (disk or `queue.maxStoreBytes`).
        case storageFull
        /// Times a connection's reading was paused because it had `maxPendingRequests`
        /// requests, or `maxPendingBytes` of envelopes, waiting for their answers.
        case pendingRequests
        /// Times a connection's reading and deliveries were paused because it did not read
        /// what the relay had written (its outgoing buffer past NIO's high-water mark).
        case slowReader

        // Access refused.

        /// Connections dropped because their first handshake message did not decrypt: sent
        /// to another relay's key (a wrong pin), or not Noise at all (scanners).
        case unknownRelayKey
        /// Handshakes that failed after the first message (a damaged or replayed third message).
        case handshakeFailed
        /// Keys that completed the handshake but are not a current device or admin key.
        case notAdmitted
        /// Requests answered REVOKED (a revoked device asking for more than its directory),
        /// and connections dropped because a publish revoked their key.
        case revoked
        /// Requests a key's role may not make (NOT_ALLOWED), e.g. a device publishing the directory.
        case notAllowed
        /// Directory publishes refused (DIRECTORY_REJECTED: bad signatures, below threshold, a fork).
        case directoryRejected
        /// Requests that broke the protocol (BAD_REQUEST), and connections closed for one.
        case badRequest

        // Work done.

        /// Ed25519 signature verifications made for directory publishes: a publish refused
        /// by the cheap checks (or by its key's role) costs none.
        case directorySignaturesVerified
    }

    /// The status file, in the relay's directory.
    public static let fileName = "limits.json"

    private let counts = NIOLockedValueBox([Limit: Int]())
    /// When the relay started, seconds since 1970.
    public let since: UInt64

    public init(since: UInt64) {
        self.since = since
    }

    public func count(_ limit: Limit, by amount: Int = 1) {
        guard amount > 0 else { return }
        counts.withLockedValue { $0[limit, default: 0] += amount }
    }

    /// Every limit's count (zero for those never tripped).
    public var snapshot: [Limit: Int] {
        let counts = self.counts.withLockedValue { $0 }
        return Dictionary(uniqueKeysWithValues: Limit.allCases.map { ($0, counts[$0] ?? 0) })
    }

    /// The file's contents: `{"since": S, "updated": U, "counts": {"sendRate": N, …}}`.
    public func encoded(updated: UInt64) -> Data {
        let object: [String: Any] = [
            "since": since, "updated": updated,
            "counts": Dictionary(uniqueKeysWithValues: snapshot.map { ($0.key.rawValue, $0.value) }),
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    /// Writes the file (a temporary file renamed into place, so a reader never sees half
    /// of one). Not fsynced: a status is not worth a disk flush, and a crash loses only counts.
    public func write(toDirectory directory: String, updated: UInt64) throws {
        let url = URL(fileURLWithPath: directory).appendingPathComponent(Self.fileName)
        try encoded(updated: updated).write(to: url, options: .atomic)
    }

    /// Reads a status file; nil when there is none or it is not one.
    public static func read(directory: String) -> (since: UInt64, updated: UInt64, counts: [String: Int])? {
        let url = URL(fileURLWithPath: directory).appendingPathComponent(fileName)
        // A status file is small; anything larger is not one.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              let size = attributes[.size] as? Int, size <= 4096,
              let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let since = (object["since"] as? NSNumber)?.uint64Value,
              let updated = (object["updated"] as? NSNumber)?.uint64Value,
              let counts = object["counts"] as? [String: Any] else { return nil }
        var result: [String: Int] = [:]
        for (name, value) in counts {
            guard let count = (value as? NSNumber)?.intValue, count >= 0 else { return nil }
            result[name] = count
        }
        return (since, updated, result)
    }
}
