import ArgumentParser

/// The shared options (`--home`, `--passphrase-file`, `--json`) written before the
/// subcommand, `valise --home H inbox`: swift-argument-parser reads a subcommand's options
/// only after its name, so they are moved there before parsing. Exactly these options, only
/// in front of the first subcommand word, `--opt=value` too, never past `--`; anything else
/// there (`--help`, `--version`, an unknown option) leaves the arguments as they were.
enum LeadingOptions {
    /// Options that take a value.
    static let valued: Set<String> = ["--home", "--passphrase-file"]
    /// Flags.
    static let flags: Set<String> = ["--json"]

    static func moved(_ arguments: [String], root: any ParsableCommand.Type = Valise.self) -> [String] {
        var leading: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex, arguments[index].hasPrefix("-") {
            let word = arguments[index]
            let name = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
            if flags.contains(word) {
                leading.append(word)
                index += 1
            } else if valued.contains(name), word.contains("=") {
                leading.append(word)
                index += 1
            } else if valued.contains(word), index + 1 < arguments.endIndex {
                leading += [word, arguments[index + 1]]
                index += 2
            } else {
                // `--`, `--help`, `--version`, anything else: not ours to move.
                return arguments
            }
        }
        guard !leading.isEmpty else { return arguments }
        // The subcommand words that follow, down the command tree (`admin show`).
        var command = root
        var path: [String] = []
        var next = index
        while next < arguments.endIndex, let sub = subcommand(named: arguments[next], of: command) {
            path.append(arguments[next])
            command = sub
            next += 1
        }
        guard !path.isEmpty else { return arguments }
        return path + leading + arguments[next...]
    }

    static func subcommand(named word: String, of command: any ParsableCommand.Type) -> (any ParsableCommand.Type)? {
        command.configuration.subcommands.first { sub in
            sub._commandName == word || sub.configuration.aliases.contains(word)
        }
    }
}
