import Foundation
import ValiseClient
#if canImport(Glibc)
import Glibc
#endif

/// Asks a yes/no question on the terminal; without a terminal the caller's flag must have
/// answered already, so the command stops instead of guessing.
enum Confirmation {
    static func ask(_ question: String, flagHint: String) throws(ClientError) -> Bool {
        let answer = try TerminalPrompt.readLine(prompt: "\(question) [y/N] ", missingTerminalHint: flagHint)
        return ["y", "yes"].contains(answer.lowercased().trimmingCharacters(in: .whitespaces))
    }

    /// Whether a person is likely there to answer: standard error is a terminal. Commands
    /// that ask only at a terminal (a large circular) proceed without asking otherwise.
    static var atTerminal: Bool { isatty(STDERR_FILENO) != 0 }
}
