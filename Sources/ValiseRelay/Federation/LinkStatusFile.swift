import Foundation
import ValiseStore

/// Each relay link's state, as the running relay last wrote it (`links.json` in the relay's
/// directory, rewritten about once a second while it changes), for `valised status`.
public struct LinkStatusFile: Sendable, Equatable, Codable {
    public static let fileName = "links.json"
    /// A status file is small; anything larger is not one.
    static let maximumBytes = 1 << 20

    public struct Link: Sendable, Equatable, Codable {
        /// The other relay's name in the directory.
        public var relay: String
        /// waiting (for the next attempt), connecting, handshaking, up, stopped.
        public var state: String
        public var address: String
        /// When the link last came up or last handed over an envelope (seconds since 1970).
        public var lastSuccess: UInt64?
        /// Why it last failed, when it did.
        public var lastError: String?
        /// Forwards sent and not yet answered.
        public var inFlight: Int
    }

    /// When the relay wrote it (seconds since 1970).
    public var updated: UInt64
    public var links: [Link]

    public init(updated: UInt64, links: [Link]) {
        self.updated = updated
        self.links = links
    }

    public func write(toDirectory directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try SecureFile.writeAtomically(Array(try encoder.encode(self)), to: directory + "/" + Self.fileName, mode: 0o600)
    }

    /// Nil when there is none or it is not one.
    public static func read(directory: String) -> LinkStatusFile? {
        guard let bytes = try? SecureFile.read(directory + "/" + fileName, maximumByteCount: maximumBytes, access: .any) else { return nil }
        return try? JSONDecoder().decode(LinkStatusFile.self, from: Data(bytes))
    }
}
