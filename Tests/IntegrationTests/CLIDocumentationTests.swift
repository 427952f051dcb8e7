import Foundation
import Testing

/// docs/CLI.md against the programs (issue 18): every command and subcommand of `valise`
/// and `valised`, and every long option their `--help` shows, is named in docs/CLI.md, so
/// that an option added without its documentation fails here, listing what is missing.
@Suite("CLI documentation: docs/CLI.md names every command and option of every --help (real valise, valised)")
struct CLIDocumentationTests {
    /// One command as argument-parser describes it (`--experimental-dump-help`).
    struct Command {
        let path: [String]
        let options: [String]

        /// How CLI.md names it: `valise sync` at the first level, `admin enroll` below
        /// (the admin commands are a table of `admin …` rows).
        var documentedName: String {
            path.count <= 2 ? path.joined(separator: " ") : path.dropFirst().joined(separator: " ")
        }
    }

    static let programs = ["valise", "valised"]

    @Test("every command and every long option of valise and valised is named in docs/CLI.md")
    func everyCommandAndOptionDocumented() throws {
        let manual = try String(contentsOfFile: Self.repositoryFile("docs/CLI.md"), encoding: .utf8)
        var missing: [String] = []
        for program in Self.programs {
            for command in try Self.commands(of: program) {
                if !Self.names(command.documentedName, in: manual) {
                    missing.append("command `\(command.documentedName)` (\(command.path.joined(separator: " ")))")
                }
                for option in command.options where !Self.names(option, in: manual) {
                    missing.append("option \(option) of `\(command.path.joined(separator: " "))`")
                }
            }
        }
        #expect(missing.isEmpty, "docs/CLI.md does not name:\n\(missing.joined(separator: "\n"))")
    }

    @Test("every option docs/CLI.md names is an option of valise or valised (hidden ones included)")
    func everyDocumentedOptionExists() throws {
        let manual = try String(contentsOfFile: Self.repositoryFile("docs/CLI.md"), encoding: .utf8)
        var known: Set<String> = ["--help", "--version"]
        for program in Self.programs {
            for command in try Self.commands(of: program, includingHidden: true) { known.formUnion(command.options) }
        }
        let named = Set(try Self.longOptions(in: manual))
        let unknown = named.subtracting(known).sorted()
        #expect(unknown.isEmpty, "docs/CLI.md names options that no command has:\n\(unknown.joined(separator: "\n"))")
    }

    @Test("every command's --help exits 0 and shows each option the dump lists, and its subcommands")
    func everyHelpRuns() throws {
        for program in Self.programs {
            let commands = try Self.commands(of: program)
            #expect(commands.count > 3, "\(program): only \(commands.map(\.path))")
            for command in commands {
                let result = try ValiseCLI.run(Array(command.path.dropFirst()) + ["--help"], program: program, timeout: 20)
                let shown = command.path.joined(separator: " ")
                #expect(result.status == 0, "\(shown) --help exited \(result.status): \(result.stderr)")
                for option in command.options {
                    #expect(Self.names(option, in: result.stdout), "\(shown) --help does not show \(option):\n\(result.stdout)")
                }
                for sub in commands where sub.path.count == command.path.count + 1 && Array(sub.path.dropLast()) == command.path {
                    #expect(result.stdout.contains(sub.path.last!), "\(shown) --help does not list \(sub.path.last!)")
                }
            }
        }
    }

    // MARK: Helpers

    /// Every command of `program`, the root included, from its help dump.
    static func commands(of program: String, includingHidden: Bool = false) throws -> [Command] {
        let result = try ValiseCLI.run(["--experimental-dump-help"], program: program, timeout: 20)
        guard result.status == 0, let root = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
              let command = root["command"] as? [String: Any] else {
            throw DumpError(program: program, detail: "status \(result.status): \(result.stderr)")
        }
        var found: [Command] = []
        collect(command, parent: [], includingHidden: includingHidden, into: &found)
        return found
    }

    private static func collect(_ command: [String: Any], parent: [String], includingHidden: Bool, into found: inout [Command]) {
        guard let name = command["commandName"] as? String, name != "help" else { return }
        let path = parent + [name]
        var options: [String] = []
        for argument in command["arguments"] as? [[String: Any]] ?? [] where includingHidden || argument["shouldDisplay"] as? Bool ?? true {
            for entry in argument["names"] as? [[String: Any]] ?? [] where entry["kind"] as? String == "long" {
                guard let long = entry["name"] as? String, !["help", "version"].contains(long) else { continue }
                options.append("--" + long)
            }
        }
        found.append(Command(path: path, options: options))
        for sub in command["subcommands"] as? [[String: Any]] ?? [] {
            collect(sub, parent: path, includingHidden: includingHidden, into: &found)
        }
    }

    /// The `--long-option` names in `text`: two hyphens and a lower-case word, not inside a
    /// longer word.
    static func longOptions(in text: String) throws -> [String] {
        let pattern = try NSRegularExpression(pattern: "(?<![A-Za-z0-9-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        return pattern.matches(in: text, range: range).compactMap { Range($0.range, in: text).map { String(text[$0]) } }
    }

    /// Whether `text` names `word` as a whole: `--relay` is not named by `--relay-name`.
    static func names(_ word: String, in text: String) -> Bool {
        var searchRange = text.startIndex..<text.endIndex
        while let found = text.range(of: word, range: searchRange) {
            let before = found.lowerBound == text.startIndex ? nil : text[text.index(before: found.lowerBound)]
            let after = found.upperBound == text.endIndex ? nil : text[found.upperBound]
            if !isNamePart(before, leading: true) && !isNamePart(after, leading: false) { return true }
            searchRange = found.upperBound..<text.endIndex
        }
        return false
    }

    /// A letter, digit or hyphen continues a name; before it, a hyphen is part of `--x`.
    private static func isNamePart(_ character: Character?, leading: Bool) -> Bool {
        guard let character else { return false }
        return character.isLetter || character.isNumber || character == "-" || (!leading && character == "_")
    }

    static func repositoryFile(_ relative: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(relative).path
    }

    struct DumpError: Error, CustomStringConvertible {
        let program: String
        let detail: String
        var description: String { "\(program) --experimental-dump-help failed: \(detail)" }
    }
}
