public import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

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
        /// Prekey fetches answered RATE_LIMITED: one device's rate of members fetched
        /// (`prekeyMembersPerMinute`, `prekeyMemberBurst`).
        case prekeyFetchRate
        /// Bundles handed out without a one-time prekey because the device had one of that
        /// member's within the hour (or the relay's table of those is full).
        case oneTimePrekeyPerMember
        /// Bundles handed out without a one-time prekey because the device took as many as
        /// it may (`oneTimePrekeysPerMinute`, `oneTimePrekeyBurst`).
        case oneTimePrekeyRate
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
        /// to another relay's key (a wrong pin), or not Noise at all; and connections whose
        /// first bytes were not a Valise preamble (scanners).
        case unknownRelayKey
        /// Handshakes that failed after the first message (a damaged or replayed third message).
        case handshakeFailed
        /// Preambles for a version or channel this relay does not serve (answered VERSION).
        case otherVersion
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
        /// Directory forks met on relay links (two valid entries for one sequence number):
        /// each one is alarmed in the log; directory exchange on that link stops.
        case directoryFork

        // Work done.

        /// Ed25519 signature verifications made for directory publishes: a publish refused
        /// by the cheap checks (or by its key's role) costs none.
        case directorySignaturesVerified
    }

    /// The status file, in the relay's directory.
    public static let fileName = "limits.json"
    /// How far back the recent counts (`recent` in the file) reach, in whole minutes.
    public static let recentMinutes: UInt64 = 15

    /// Counts since the start, and per minute (seconds since 1970 / 60) for the last
    /// `recentMinutes`; older minutes are dropped as counts arrive.
    private let state = NIOLockedValueBox((counts: [Limit: Int](), minutes: [UInt64: [Limit: Int]]()))
    private let clock: @Sendable () -> UInt64
    /// When the relay started, seconds since 1970.
    public let since: UInt64

    public init(since: UInt64, clock: @escaping @Sendable () -> UInt64 = { UInt64(max(0, Date().timeIntervalSince1970)) }) {
        self.since = since
        self.clock = clock
    }

    public func count(_ limit: Limit, by amount: Int = 1) {
        guard amount > 0 else { return }
        let minute = clock() / 60
        state.withLockedValue { state in
            state.counts[limit, default: 0] += amount
            state.minutes[minute, default: [:]][limit, default: 0] += amount
            if state.minutes.count > Int(Self.recentMinutes) {
                state.minutes = state.minutes.filter { $0.key + Self.recentMinutes > minute }
            }
        }
    }

    /// Every limit's count (zero for those never tripped).
    public var snapshot: [Limit: Int] {
        let counts = state.withLockedValue { $0.counts }
        return Dictionary(uniqueKeysWithValues: Limit.allCases.map { ($0, counts[$0] ?? 0) })
    }

    /// The limits tripped in the last `recentMinutes` minutes (this one included) as of
    /// `now`, with their counts; those not tripped are left out.
    public func recent(now: UInt64) -> [Limit: Int] {
        let minute = now / 60
        return state.withLockedValue { state in
            var recent: [Limit: Int] = [:]
            for (start, counts) in state.minutes where start + Self.recentMinutes > minute && start <= minute {
                recent.merge(counts, uniquingKeysWith: +)
            }
            return recent
        }
    }

    /// What the file says, to tell whether it must be written again.
    public struct Figures: Equatable, Sendable {
        public let counts: [Limit: Int]
        public let recent: [Limit: Int]
    }

    public func figures(now: UInt64) -> Figures { Figures(counts: snapshot, recent: recent(now: now)) }

    /// The file's contents: `{"since": S, "updated": U, "counts": {"sendRate": N, …},
    /// "recentMinutes": 15, "recent": {"sendRate": N, …}}` (recent: tripped limits only).
    public func encoded(updated: UInt64) -> Data {
        let object: [String: Any] = [
            "since": since, "updated": updated,
            "counts": Dictionary(uniqueKeysWithValues: snapshot.map { ($0.key.rawValue, $0.value) }),
            "recentMinutes": Self.recentMinutes,
            "recent": Dictionary(uniqueKeysWithValues: recent(now: updated).map { ($0.key.rawValue, $0.value) }),
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    /// The file's fixed size: the JSON, padded with spaces.
    public static let fileBytes = 4096

    /// Writes the file in place: its blocks are allocated on the first write and reused
    /// ever after, so the counts still reach `valised status` when the disk is full (a
    /// renamed temporary file needs new blocks, and a full disk is when the counts matter).
    /// One page, written at once; a reader that meets a torn one reads again. Not fsynced:
    /// a status is not worth a disk flush, and a crash loses only counts.
    public func write(toDirectory directory: String, updated: UInt64) throws {
        let json = Array(encoded(updated: updated))
        guard json.count < Self.fileBytes else { throw POSIXError(.EFBIG) }
        let page = json + [UInt8](repeating: 0x20, count: Self.fileBytes - json.count - 1) + [0x0A]
        let path = directory + "/" + Self.fileName
        let descriptor = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        if status.st_size != off_t(Self.fileBytes) {
            // A first write, or a file of another size (an older relay's): allocate it whole.
            guard ftruncate(descriptor, 0) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            let result = posix_fallocate(descriptor, 0, off_t(Self.fileBytes))
            guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        }
        let written = page.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        guard written == Self.fileBytes else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// A status file as read: counts by limit name.
    public struct Status: Sendable, Equatable {
        public let since: UInt64
        public let updated: UInt64
        public let counts: [String: Int]
        /// Limits tripped in the `recentMinutes` before `updated` (empty from a relay that
        /// did not write them).
        public let recent: [String: Int]
        public let recentMinutes: UInt64
    }

    /// Reads a status file; nil when there is none or it is not one. A page caught while
    /// the relay rewrites it may not parse: it is read again (a few times, at once).
    public static func read(directory: String) -> Status? {
        for _ in 0..<3 {
            if let status = readOnce(directory: directory) { return status }
        }
        return nil
    }

    private static func readOnce(directory: String) -> Status? {
        let url = URL(fileURLWithPath: directory).appendingPathComponent(fileName)
        // A status file is small; anything larger is not one.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              let size = attributes[.size] as? Int, size <= fileBytes,
              let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let since = (object["since"] as? NSNumber)?.uint64Value,
              let updated = (object["updated"] as? NSNumber)?.uint64Value,
              let counts = object["counts"] as? [String: Any] else { return nil }
        guard let result = names(counts) else { return nil }
        // Absent from an older relay's file: none recent. Present, it must be counts.
        var recent: [String: Int] = [:]
        if let given = object["recent"] as? [String: Any] {
            guard let parsed = names(given) else { return nil }
            recent = parsed
        }
        let minutes = (object["recentMinutes"] as? NSNumber)?.uint64Value ?? recentMinutes
        return Status(since: since, updated: updated, counts: result, recent: recent, recentMinutes: minutes)
    }

    /// Counts by name; nil if one is not a count.
    private static func names(_ counts: [String: Any]) -> [String: Int]? {
        var result: [String: Int] = [:]
        for (name, value) in counts {
            guard let count = (value as? NSNumber)?.intValue, count >= 0 else { return nil }
            result[name] = count
        }
        return result
    }
}
