import Foundation
import ValiseClient

/// Asks a yes/no question on the terminal; without a terminal the caller's flag must have
/// answered already, so the command stops instead of guessing.
enum Confirmation {
    static func ask(_ question: String, flagHint: String) throws(ClientError) -> Bool {
        let answer = try TerminalPrompt.readLine(prompt: "\(question) [y/N] ", missingTerminalHint: flagHint)
        return ["y", "yes"].contains(answer.lowercased().trimmingCharacters(in: .whitespaces))
    }
}
