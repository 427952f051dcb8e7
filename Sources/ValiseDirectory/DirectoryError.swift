public import ValiseCrypto

/// Why a directory log, an entry or a checkpoint was refused: the entry (by sequence
/// number and what it does), the rule that failed, and the detail.
public struct DirectoryError: CodedError {
    /// The rule, stable for scripts: `chain`, `threshold`, `fork`, …
    public let code: String
    public let message: String
    /// The entry's sequence number, when the failure is about one entry.
    public let sequence: UInt64?

    init(_ rule: Rule, sequence: UInt64?, subject: String?, _ detail: String) {
        self.code = rule.rawValue
        self.sequence = sequence
        let prefix: String
        switch (sequence, subject) {
        case let (sequence?, subject?): prefix = "entry \(sequence) (\(subject)): "
        case let (sequence?, nil): prefix = "entry \(sequence): "
        case let (nil, subject?): prefix = "\(subject): "
        default: prefix = ""
        }
        // The stable rule name is in brackets, for people to quote and scripts to match.
        self.message = "\(prefix)\(rule.description) [\(rule.rawValue)]: \(detail)"
    }

    /// The rules a log must follow (docs/PROTOCOL.md, "Directory verification").
    public enum Rule: String, Sendable, CaseIterable, CustomStringConvertible {
        case malformed
        case genesis
        case genesisPin = "genesis-pin"
        case sequence
        case chain
        case time
        case future
        case signature
        case signer
        case threshold
        case admins
        case member
        case keyReuse = "key-reuse"
        case request
        case relay
        case rollback
        case fork
        case checkpoint
        case notAfter = "not-after"

        public var description: String {
            switch self {
            case .malformed: "malformed"
            case .genesis: "genesis rule broken"
            case .genesisPin: "not the pinned organisation"
            case .sequence: "out of sequence"
            case .chain: "hash chain broken"
            case .time: "time goes backwards"
            case .future: "dated in the future"
            case .signature: "invalid signature"
            case .signer: "signed by a key that is not an admin"
            case .threshold: "not enough admin signatures"
            case .admins: "invalid admin set"
            case .member: "member rule broken"
            case .keyReuse: "key already used"
            case .request: "request signature invalid"
            case .relay: "relay rule broken"
            case .rollback: "older than the verified log"
            case .fork: "FORK"
            case .checkpoint: "checkpoint refused"
            case .notAfter: "checkpoint key validity out of bounds"
            }
        }
    }

    /// A checkpoint that does not decode.
    public static let malformedCheckpoint = DirectoryError(.malformed, sequence: nil, subject: "checkpoint", "it does not decode")

    static func malformed(_ error: FormatError, sequence: UInt64? = nil) -> DirectoryError {
        DirectoryError(.malformed, sequence: sequence, subject: nil, error.message)
    }
}
