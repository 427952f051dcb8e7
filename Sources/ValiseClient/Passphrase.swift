#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import ValiseCrypto
import ValiseStore

/// Where a passphrase comes from, in order of precedence.
public enum PassphraseSource: Equatable, Sendable, CustomStringConvertible {
    /// `--passphrase-file FILE`: the file's first line, without its line ending.
    case file(String)
    /// An environment variable, meant for tests and automation (other processes of the same
    /// user can read a process's environment).
    case environment(String)
    /// A prompt on the controlling terminal, without echo.
    case terminal

    public var description: String {
        switch self {
        case .file(let path): "the passphrase file \(path)"
        case .environment(let name): "$\(name)"
        case .terminal: "the terminal"
        }
    }
}

/// Reads passphrases into guarded memory and checks new ones.
public struct PassphraseReader: Sendable {
    /// New passphrases must have at least this many characters (Unicode scalars).
    public static let minimumNewLength = 12
    /// Longer passphrases are refused (bytes of UTF-8).
    public static let maximumByteCount = 1024
    /// A passphrase file larger than this is not a passphrase file.
    static let maximumFileByteCount = 64 * 1024

    /// Looks up an environment variable as secret bytes (nil if unset).
    public typealias EnvironmentLookup = @Sendable (String) -> SecretBytes?

    private let environment: EnvironmentLookup
    private let terminal: @Sendable (String, String) throws(ClientError) -> SecretBytes

    /// Reads the real environment (without going through a Swift String) and the real terminal.
    public init() {
        self.init(environment: PassphraseReader.processEnvironment, terminal: { (prompt, hint) throws(ClientError) in
            try TerminalPrompt.readSecret(prompt: prompt, noTerminalHint: hint)
        })
    }

    public init(
        environment: @escaping EnvironmentLookup,
        terminal: @escaping @Sendable (_ prompt: String, _ noTerminalHint: String) throws(ClientError) -> SecretBytes
    ) {
        self.environment = environment
        self.terminal = terminal
    }

    /// Picks the source: the file if one is named, else the variable if it is set, else the terminal.
    public func source(file: String?, variable: String) -> PassphraseSource {
        if let file { return .file(file) }
        if environment(variable) != nil { return .environment(variable) }
        return .terminal
    }

    /// What to say when there is no terminal either. `flag` and `variable` are the options
    /// that would have given this passphrase.
    public var noTerminalHint: String = "use --passphrase-file FILE, or set VALISE_PASSPHRASE for automation"

    /// Reads a passphrase to unlock something.
    public func read(from source: PassphraseSource, prompt: String) throws(ClientError) -> SecretBytes {
        let passphrase = try readRaw(from: source, prompt: prompt)
        guard passphrase.count > 0 else {
            throw .usage("empty-passphrase", "the passphrase from \(source) is empty")
        }
        return passphrase
    }

    /// How often a person at the terminal may type a passphrase before the command stops, as ssh.
    public static let terminalAttempts = 3

    /// Reads a passphrase and runs `body` with it. At the terminal a wrong passphrase is
    /// asked again, `terminalAttempts` times in all; from a file or a variable, where
    /// asking again would read the same, it fails at once.
    public func unlock<T>(
        from source: PassphraseSource, prompt: String, _ body: (SecretBytes) throws(ClientError) -> T
    ) throws(ClientError) -> T {
        var attempt = 1
        var currentPrompt = prompt
        while true {
            let passphrase = try read(from: source, prompt: currentPrompt)
            do {
                return try body(passphrase)
            } catch where error.kind == .wrongPassphrase && source == .terminal && attempt < Self.terminalAttempts {
                attempt += 1
                currentPrompt = "Wrong passphrase; try again.\n\(prompt)"
            }
        }
    }

    /// Reads a new passphrase, asking twice on a terminal, and checks its length.
    public func readNew(from source: PassphraseSource, prompt: String) throws(ClientError) -> SecretBytes {
        let passphrase = try readRaw(from: source, prompt: prompt)
        if source == .terminal {
            let again = try readRaw(from: source, prompt: "Type it again: ")
            guard passphrase.constantTimeEquals(again) else {
                throw .usage("passphrase-mismatch", "the two passphrases differ; nothing was changed")
            }
        }
        try Self.checkNew(passphrase, from: source)
        return passphrase
    }

    /// New passphrases: valid UTF-8, at least 12 characters.
    public static func checkNew(_ passphrase: SecretBytes, from source: PassphraseSource) throws(ClientError) {
        // Validated and counted in place: making a String would copy the passphrase into
        // ordinary memory that is never wiped.
        let scalars: Int? = passphrase.withUnsafeBytes { raw in
            var bytes = raw.makeIterator()
            var parser = Unicode.UTF8.ForwardParser()
            var count = 0
            while true {
                switch parser.parseScalar(from: &bytes) {
                case .valid: count += 1
                case .emptyInput: return count
                case .error: return nil
                }
            }
        }
        guard let scalars else {
            throw .usage("invalid-passphrase", "the new passphrase from \(source) is not valid UTF-8 text")
        }
        guard scalars >= minimumNewLength else {
            throw .usage(
                "weak-passphrase",
                "the new passphrase from \(source) is too short: use at least \(minimumNewLength) characters (a few unrelated words work well)"
            )
        }
    }

    private func readRaw(from source: PassphraseSource, prompt: String) throws(ClientError) -> SecretBytes {
        let passphrase: SecretBytes
        switch source {
        case .file(let path):
            do {
                passphrase = Self.firstLine(
                    of: try SecureFile.readSecret(path, maximumByteCount: Self.maximumFileByteCount)
                )
            } catch {
                // A file that is missing, loose or not a file: a file problem (exit 1), not bad input.
                throw ClientError(kind: .failure, code: error.code, message: "passphrase file: \(error.message)")
            }
        case .environment(let name):
            guard let value = environment(name) else {
                throw .usage("no-passphrase", "$\(name) is not set")
            }
            passphrase = Self.firstLine(of: value)
        case .terminal:
            passphrase = try terminal(prompt, noTerminalHint)
        }
        guard passphrase.count <= Self.maximumByteCount else {
            throw .usage("passphrase-too-long", "the passphrase from \(source) is longer than \(Self.maximumByteCount) bytes")
        }
        return passphrase
    }

    /// The bytes before the first line feed, without a carriage return before it.
    public static func firstLine(of bytes: SecretBytes) -> SecretBytes {
        let end: Int = bytes.withUnsafeBytes { raw in
            var end = raw.firstIndex(of: UInt8(ascii: "\n")) ?? raw.count
            if end > 0 && raw[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            return end
        }
        return end == bytes.count ? bytes : bytes.slice(0..<end)
    }

    @Sendable
    static func processEnvironment(_ name: String) -> SecretBytes? {
        guard let value = getenv(name) else { return nil }
        let length = strlen(value)
        return SecretBytes(count: length) { out in
            if length > 0 { out.baseAddress!.copyMemory(from: value, byteCount: length) }
        }
    }
}
