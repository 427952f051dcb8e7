import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

#if canImport(Glibc)
import Glibc
#endif

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The Valise home directory (default: $VALISE_HOME, else ~/.valise).", valueName: "dir"))
    var home: String?

    @Option(name: .long, help: ArgumentHelp(
        "Read the passphrase from the first line of this file (mode 0600) instead of asking.",
        valueName: "file"))
    var passphraseFile: String?

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func resolveHome() throws(ClientError) -> ValiseHome {
        try ValiseHome.resolve(flag: home, environment: Environment.values(["VALISE_HOME", "HOME"]))
    }

    /// The passphrase that unlocks an existing keystore.
    func passphrase(for path: String) throws(ClientError) -> SecretBytes {
        try Passphrases.unlock(file: passphraseFile, prompt: "Passphrase for \(path): ")
    }

    /// Unlocks the keystore at `path` with `body`; at a terminal a wrong passphrase is asked
    /// again (three tries, as ssh).
    func unlocking<T>(_ path: String, _ body: (SecretBytes) throws(ClientError) -> T) throws(ClientError) -> T {
        try Passphrases.unlocking(file: passphraseFile, prompt: "Passphrase for \(path): ", body)
    }
}

/// Where passphrases come from (docs/CLI.md, "Passphrases").
enum Passphrases {
    static func unlock(file: String?, prompt: String) throws(ClientError) -> SecretBytes {
        let reader = PassphraseReader()
        return try reader.read(from: reader.source(file: file, variable: "VALISE_PASSPHRASE"), prompt: prompt)
    }

    /// Reads a passphrase and unlocks with it, asking again at a terminal when it is wrong.
    static func unlocking<T>(
        file: String?, prompt: String, _ body: (SecretBytes) throws(ClientError) -> T
    ) throws(ClientError) -> T {
        let reader = PassphraseReader()
        return try reader.unlock(from: reader.source(file: file, variable: "VALISE_PASSPHRASE"), prompt: prompt, body)
    }

    /// A new passphrase; `flag` and `variable` are the options that give it without a terminal.
    static func new(
        file: String?, flag: String = "--passphrase-file", variable: String = "VALISE_PASSPHRASE", prompt: String
    ) throws(ClientError) -> SecretBytes {
        var reader = PassphraseReader()
        reader.noTerminalHint = "use \(flag) FILE, or set \(variable) for automation"
        return try reader.readNew(from: reader.source(file: file, variable: variable), prompt: prompt)
    }
}

/// The Argon2id profile for a new keystore.
enum KDFProfileArgument: String, ExpressibleByArgument, CaseIterable {
    case standard
    case insecureTest = "insecure-test"

    var parameters: PasswordKDFParameters {
        switch self {
        case .standard: .standard
        case .insecureTest: .insecureTest
        }
    }

    static var profileHelp: ArgumentHelp {
        ArgumentHelp(
            "How hard the passphrase is to guess from a stolen keystore: 'standard' (256 MiB, about a second), or 'insecure-test' for automated tests only ('valise whoami' warns about it).",
            valueName: "profile"
        )
    }
}

enum Environment {
    static func values(_ names: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for name in names {
            if let value = getenv(name) { result[name] = String(cString: value) }
        }
        return result
    }

    static func now() -> UInt64 { UInt64(max(0, time(nil))) }
}

extension MemberName {
    /// Parses a member name given on the command line, in any case (stored lower-case).
    static func argument(_ text: String) throws(ClientError) -> MemberName {
        do {
            return try MemberName(typed: text)
        } catch {
            throw ClientError(.usage, error)
        }
    }
}

/// Durations on the command line: `90s`, `30m`, `48h`, `7d`.
struct DurationArgument: ExpressibleByArgument {
    let seconds: UInt32

    init?(argument: String) {
        guard let unit = argument.last, let value = UInt32(argument.dropLast()), value > 0 else { return nil }
        let multiplier: UInt32
        switch unit {
        case "s": multiplier = 1
        case "m": multiplier = 60
        case "h": multiplier = 3600
        case "d": multiplier = 86_400
        default: return nil
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        seconds = product
    }

    init(seconds: UInt32) { self.seconds = seconds }

    var defaultValueDescription: String { Self.describe(seconds) }

    static func describe(_ seconds: UInt32) -> String { Timestamp.duration(seconds) }
}

/// Runs a name or text check on command-line input; a broken rule is a usage error.
func checkInput(_ body: () throws(NameError) -> Void) throws(ClientError) {
    do {
        try body()
    } catch {
        throw ClientError(.usage, error)
    }
}
