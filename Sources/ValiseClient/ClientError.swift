public import ValiseCrypto
public import ValiseStore
public import ValiseDirectory

/// A failure a staff member can act on, in one line. The kind decides the exit status
/// (see docs/CLI.md); the message never holds a secret.
public struct ClientError: CodedError {
    public enum Kind: Sendable, Hashable {
        /// Invalid input: a bad name, a weak passphrase, conflicting options.
        case usage
        /// The passphrase did not unlock the keystore.
        case wrongPassphrase
        /// A keystore file is damaged, truncated or not a keystore.
        case damaged
        /// Nothing set up yet (no device here).
        case notSetUp
        /// A directory log, bundle or checkpoint failed verification (tampering, a fork, a
        /// rule broken): it was not accepted.
        case verification
        /// Anything else: files, permissions, the system.
        case failure
        /// The relay cannot be reached (nothing accepted the connection).
        case unreachable
        /// The relay said it is at its connection limits (an unauthenticated notice).
        case busy
        /// The relay said it speaks another protocol version (an unauthenticated notice).
        case otherVersion
    }

    public let kind: Kind
    public let code: String
    public let message: String
    /// For a relay that cannot be reached: what happened at the address and what to check,
    /// so that a caller that tried several addresses can list each.
    var unreachable: (what: String, hint: String?)?

    public init(kind: Kind, code: String, message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    public static func usage(_ code: String, _ message: String) -> ClientError {
        ClientError(kind: .usage, code: code, message: message)
    }

    public static func failure(_ code: String, _ message: String) -> ClientError {
        ClientError(kind: .failure, code: code, message: message)
    }

    /// Another module's error, with its code and message, as the given kind.
    public init(_ kind: Kind, _ error: some CodedError) {
        self.init(kind: kind, code: error.code, message: error.message)
    }

    /// A directory verification failure, naming the entry and the rule.
    public init(_ error: DirectoryError, file: String? = nil) {
        self.init(kind: .verification, code: error.code, message: file.map { "\($0): \(error.message)" } ?? error.message)
    }

    /// A file that does not parse as what it should be: the directory's `malformed` rule.
    public init(_ error: FormatError, file: String) {
        self.init(kind: .verification, code: "malformed", message: "\(file): malformed [malformed]: \(error.message)")
    }

    /// A file error, kept as it is: it already names the path and what to do.
    public init(_ error: FileError) {
        self.init(kind: .failure, code: error.code, message: error.message)
    }

    /// A message store failure: damage (another key, a broken file) or anything else.
    public init(_ error: StoreError) {
        self.init(kind: error.kind == .corrupt ? .damaged : .failure, code: "message-store", message: error.message)
    }

    /// A key file error (device, admin or checkpoint keystore).
    public init(_ error: KeyFileError) {
        let kind: Kind
        switch error.kind {
        case .missing: kind = .notSetUp
        case .wrongPassphrase: kind = .wrongPassphrase
        case .damaged: kind = .damaged
        case .failure: kind = .failure
        }
        self.init(kind: kind, code: error.code, message: error.message)
    }
}

extension ClientError {
    /// Another error's words for a message: a coded error's own message; for anything
    /// else, no library's description (which names its types), only that it failed.
    static func words(for error: any Error) -> String {
        (error as? any CodedError)?.message ?? "an unexpected error (\(String(describing: type(of: error))))"
    }
}
