/// A member's name in the organisation, `name@mission` (for example `alice@jakarta`).
///
/// Names are identifiers that people compare and type, so they are restricted to lower-case
/// ASCII letters, digits and `. _ -`, each part starting with a letter or digit. Nothing is
/// changed silently: a name that breaks a rule is refused with the rule.
public struct MemberName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let maximumPartLength = 64

    public let value: String
    /// The part before `@`: the person.
    public var person: Substring { value[..<value.firstIndex(of: "@")!] }
    /// The part after `@`: the mission.
    public var mission: Substring { value[value.index(after: value.firstIndex(of: "@")!)...] }

    public init(_ text: String) throws(ClientError) {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw .usage("invalid-name", "member name \"\(Self.printable(text))\" must look like name@mission, for example alice@jakarta")
        }
        for (part, label) in [(parts[0], "name"), (parts[1], "mission")] {
            guard !part.isEmpty, part.utf8.count <= Self.maximumPartLength else {
                throw .usage("invalid-name", "the \(label) in \"\(Self.printable(text))\" must be 1 to \(Self.maximumPartLength) characters")
            }
            guard part.utf8.allSatisfy(Self.isAllowed), let first = part.utf8.first, Self.isAlphanumeric(first) else {
                throw .usage(
                    "invalid-name",
                    "the \(label) in \"\(Self.printable(text))\" may use only a-z, 0-9, '.', '_' and '-', and must start with a letter or digit"
                )
            }
        }
        self.value = text
    }

    public var description: String { value }
    public static func < (lhs: MemberName, rhs: MemberName) -> Bool { lhs.value < rhs.value }

    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    private static func isAllowed(_ c: UInt8) -> Bool {
        isAlphanumeric(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    /// Echoes user input in an error without letting control characters reach the terminal.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(80).map { scalar in
            scalar.properties.generalCategory == .control ? "?" : scalar
        }))
    }
}
