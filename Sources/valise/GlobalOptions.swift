import ArgumentParser
import ValiseClient
import ValiseCrypto

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
