public import ValiseCrypto

/// A relay failure, with the protocol error code the client is sent (docs/PROTOCOL.md,
/// "Relay protocol"). Messages never hold secrets.
public struct RelayError: CodedError {
    /// The relay protocol's error codes (the proto's `ErrorCode`), stable numbers.
    public enum ProtocolCode: Int, Sendable {
        case notAdmitted = 1
        case revoked = 2
        case badRequest = 3
        case unsupportedVersion = 4
        case directoryRejected = 5
        case tooLarge = 6
        case rateLimited = 7
        case notAllowed = 8
        case shuttingDown = 9
        case `internal` = 10
        case timeout = 11
        case mailboxFull = 12
        case unknownRecipient = 13
        case storageFull = 14
        case idInUse = 15
        case noPrekeys = 16
        case notHome = 17
        /// The node cannot reach its shared store: the client tries the next address.
        case unavailable = 18
        /// A blob over the device's or the relay's blob quota: nothing was stored.
        case blobQuota = 19
        /// A blob's bytes do not hash to its id: the relay deleted them.
        case blobMismatch = 20
        /// No complete blob with this id is held.
        case noSuchBlob = 21
    }

    public let code: String
    public let message: String
    public let protocolCode: ProtocolCode

    public init(_ protocolCode: ProtocolCode, code: String, message: String) {
        self.protocolCode = protocolCode
        self.code = code
        self.message = message
    }

    public static func badRequest(_ message: String) -> RelayError { RelayError(.badRequest, code: "bad-request", message: message) }
    public static func directoryRejected(_ message: String) -> RelayError {
        RelayError(.directoryRejected, code: "directory-rejected", message: message)
    }
    public static func storage(_ message: String) -> RelayError { RelayError(.internal, code: "storage", message: message) }
}
