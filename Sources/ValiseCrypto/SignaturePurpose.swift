/// What a signature is for. Every Valise signature covers `valise/v1/<purpose>`, a zero byte,
/// then the signed bytes, so a signature made for one purpose never verifies for another.
///
/// The zero byte ends the label: purposes are printable ASCII without zero bytes, so no
/// (purpose, message) pair can be re-read as a different pair.
public struct SignaturePurpose: Hashable, Sendable, CustomStringConvertible {
    /// The purpose's label, for example `directory-entry`.
    public let label: String
    /// The bytes that precede every message signed for this purpose (computed once: every
    /// signature check uses them).
    public let prefix: [UInt8]

    /// `label`: 1 to 64 characters from `a-z 0-9 - . /`. Labels are constants in code, not
    /// input, so an invalid one is a programming error.
    public init(_ label: String) {
        precondition(Self.isValid(label), "invalid signature purpose label")
        self.label = label
        self.prefix = Array("valise/v1/\(label)".utf8) + [0]
    }

    public var description: String { "valise/v1/\(label)" }

    static func isValid(_ label: String) -> Bool {
        let utf8 = Array(label.utf8)
        guard (1...64).contains(utf8.count) else { return false }
        return utf8.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: "/")
        }
    }
}
