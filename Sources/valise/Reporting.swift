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
        printError(error.message)
        throw ExitCode(ExitStatus.of(error.kind))
    }
}

/// The same for async command bodies.
func reportingErrorsAsync<T>(_ body: () async throws(ClientError) -> T) async throws(ExitCode) -> T {
    do {
        return try await body()
    } catch {
        printError(error.message)
        throw ExitCode(ExitStatus.of(error.kind))
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
