public import ValiseCrypto

/// A name (member, admin, relay, organisation) that breaks its rule; the message states the
/// rule. Input is echoed only in printable form.
public struct NameError: CodedError {
    public let code = "invalid-name"
    public let message: String

    init(_ message: String) { self.message = message }

    /// Echoes user input in an error without letting control characters reach a terminal.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(80).map { scalar in
            scalar.properties.generalCategory == .control ? "?" : scalar
        }))
    }
}

/// The rule shared by the parts of member names, admin names and relay names: 1 to 64
/// bytes of `a-z 0-9 . _ -`, starting with a letter or digit. Names are identifiers that
/// people compare and type; nothing is changed silently.
public enum NameRule {
    public static let maximumLength = 64

    public static func check(_ part: Substring, label: String, in whole: String) throws(NameError) {
        guard !part.isEmpty, part.utf8.count <= maximumLength else {
            throw NameError("the \(label) in \"\(NameError.printable(whole))\" must be 1 to \(maximumLength) characters")
        }
        guard part.utf8.allSatisfy(isAllowed), let first = part.utf8.first, isAlphanumeric(first) else {
            throw NameError(
                "the \(label) in \"\(NameError.printable(whole))\" may use only a-z, 0-9, '.', '_' and '-', and must start with a letter or digit"
            )
        }
    }

    /// Checks a one-part name (an admin or a relay).
    public static func checkLabel(_ text: String, what: String) throws(NameError) {
        try check(Substring(text), label: what, in: text)
    }

    /// Free text shown to people (organisation, mission, role, reasons): valid UTF-8 of
    /// 1 to `maximum` bytes, without control characters.
    public static func checkText(_ text: String, what: String, maximum: Int) throws(NameError) {
        guard !text.isEmpty, text.utf8.count <= maximum else {
            throw NameError("the \(what) must be 1 to \(maximum) bytes")
        }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw NameError("the \(what) must not contain control characters")
        }
    }

    static func isAlphanumeric(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    static func isAllowed(_ c: UInt8) -> Bool {
        isAlphanumeric(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }
}
