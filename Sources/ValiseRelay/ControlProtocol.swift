import Foundation

/// The running relay's control socket (`DIR/control.socket`, mode 0600, the relay's user
/// only): `valised status` asks it for live figures and `valised queue` for the operator's
/// actions. One request per connection, each a line of JSON (at most
/// `maximumRequestBytes`), answered by a line of JSON (at most `maximumResponseBytes`);
/// both carry `version`, and a relay answers a version it does not speak with an error.
public enum ControlProtocol {
    public static let version = 1
    public static let socketName = "control.socket"
    public static let maximumRequestBytes = 64 * 1024
    public static let maximumResponseBytes = 8 << 20
    /// Ids in one hold, release or delete.
    public static let maximumIDs = 1000
    /// Envelopes one list returns, at most.
    public static let maximumListed = 10_000
    /// Seconds either side waits for the other's bytes before giving up.
    public static let timeoutSeconds = 10

    public static func socketPath(directory: String) -> String { directory + "/" + socketName }
}

/// What the client asks: `status`, `list` (`mailbox`, `limit`), or `hold`, `release`,
/// `delete` (`ids`, hexadecimal).
public struct ControlRequest: Codable, Sendable, Equatable {
    public enum Command: String, Codable, Sendable, CaseIterable {
        case status, list, hold, release, delete
    }

    public var version: Int
    public var command: Command
    public var ids: [String]?
    public var mailbox: String?
    public var limit: Int?

    public init(command: Command, ids: [String]? = nil, mailbox: String? = nil, limit: Int? = nil) {
        self.version = ControlProtocol.version
        self.command = command
        self.ids = ids
        self.mailbox = mailbox
        self.limit = limit
    }
}

/// The relay's answer: `error` set when the request as a whole failed; else what the
/// command gives.
public struct ControlResponse: Codable, Sendable, Equatable {
    public var version = ControlProtocol.version
    public var error: String?
    public var status: ControlStatus?
    public var envelopes: [ControlEnvelope]?
    /// One per id asked, in order.
    public var results: [ControlResult]?
}

/// Live figures only a running relay has.
public struct ControlStatus: Codable, Sendable, Equatable {
    public var processID: Int32
    /// When the relay started, seconds since 1970.
    public var since: UInt64
    /// Open connections by role (`ConnectionRole`: device, admin, relay).
    public var connections: [String: Int]
}

/// One envelope as `valised queue list` shows it: routing metadata, never the body.
public struct ControlEnvelope: Codable, Sendable, Equatable {
    public var id: String
    public var mailbox: String
    public var destination: String?
    public var precedence: String
    public var arrivedAt: UInt64
    public var expiresAt: UInt64
    public var bytes: Int
    public var held: Bool
}

/// What became of one id: `held`, `released`, `deleted`, or `unknown` (no queued envelope
/// has it) or `invalid` (not an id).
public struct ControlResult: Codable, Sendable, Equatable {
    public var id: String
    public var outcome: String
}

extension ControlProtocol {
    /// A request or response as its line: JSON (keys sorted), then a newline.
    static func line(_ message: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(message)) ?? Data()) + [0x0A]
    }
}
