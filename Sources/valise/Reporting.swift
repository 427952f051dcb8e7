import ArgumentParser
import Foundation
import ValiseClient

/// Exit statuses (docs/CLI.md): scripts can tell a wrong passphrase from a damaged file.
enum ExitStatus {
    static let failure: Int32 = 1
    static let wrongPassphrase: Int32 = 2
    static let damaged: Int32 = 3
    static let notSetUp: Int32 = 4
    static let verification: Int32 = 5
    static let unreachable: Int32 = 6
    static let busy: Int32 = 7
    static let otherVersion: Int32 = 8
    static let usage: Int32 = 64

    static func of(_ kind: ClientError.Kind) -> Int32 {
        switch kind {
        case .failure: failure
        case .wrongPassphrase: wrongPassphrase
        case .damaged: damaged
        case .notSetUp: notSetUp
        case .verification: verification
        case .unreachable: unreachable
        case .busy: busy
        case .otherVersion: otherVersion
        case .usage: usage
        }
    }
}

/// Runs a command body; a `ClientError` becomes one line on stderr and its exit status.
func reportingErrors<T>(_ body: () throws(ClientError) -> T) throws(ExitCode) -> T {
    do {
        return try body()
    } catch {
        throw report(error)
    }
}

/// The same for async command bodies.
func reportingErrorsAsync<T>(_ body: () async throws(ClientError) -> T) async throws(ExitCode) -> T {
    do {
        return try await body()
    } catch {
        throw report(error)
    }
}

/// Prints an error as the command line asked (one line, or a JSON object with `--json`)
/// and gives the exit status to end with.
func report(_ error: ClientError) -> ExitCode {
    let status = ExitStatus.of(error.kind)
    if ErrorOutput.json {
        FileHandle.standardError.write(Data((ErrorOutput.jsonLine(error, status: status) + "\n").utf8))
    } else {
        printError(error.message)
    }
    return ExitCode(status)
}

/// How errors are printed: with `--json` anywhere before `--`, as a JSON object on stderr
/// (docs/CLI.md, "Exit statuses"), so that a script reading JSON gets JSON either way.
enum ErrorOutput {
    nonisolated(unsafe) static var json = false

    struct Object: Encodable {
        struct Body: Encodable {
            let code: String
            let message: String
            let exitStatus: Int32
        }
        let error: Body
    }

    /// `{"error":{"code":…,"exitStatus":…,"message":…}}`, on one line, keys sorted.
    static func jsonLine(_ error: ClientError, status: Int32) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let object = Object(error: .init(code: error.code, message: error.message, exitStatus: status))
        let data = (try? encoder.encode(object)) ?? Data(#"{"error":{}}"#.utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Whether the arguments ask for JSON: a `--json` word before `--` (a flag, so no
    /// option takes it as its value unless written `--opt=--json`).
    static func requested(in arguments: [String]) -> Bool {
        arguments.prefix(while: { $0 != "--" }).contains("--json")
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("valise: error: \(message)\n".utf8))
}

/// A remark that is not the command's result: to stderr, so that --json output stays clean.
func printNote(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}

func printWarning(_ message: String) {
    FileHandle.standardError.write(Data("valise: warning: \(message)\n".utf8))
}

/// Prints a value as JSON with sorted keys, for scripts.
func printJSON(_ value: some Encodable) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}

/// Text padded with spaces to `width` characters, for aligned columns.
func padColumn(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
