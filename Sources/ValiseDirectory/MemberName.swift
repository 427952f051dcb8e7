/// A member's name in the organisation, `person@mission` (for example `alice@jakarta`):
/// exactly one `@`, and each part follows `NameRule`.
public struct MemberName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The longest valid name: two parts and the `@`.
    public static let maximumLength = 2 * NameRule.maximumLength + 1

    public let value: String
    /// The part before `@`: the person.
    public var person: Substring { value[..<value.firstIndex(of: "@")!] }
    /// The part after `@`: the mission.
    public var mission: Substring { value[value.index(after: value.firstIndex(of: "@")!)...] }

    public init(_ text: String) throws(NameError) {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw NameError("member name \"\(NameError.printable(text))\" must look like name@mission, for example alice@jakarta")
        }
        try NameRule.check(parts[0], label: "name", in: text)
        try NameRule.check(parts[1], label: "mission", in: text)
        self.value = text
    }

    /// A name as a person types it: capital letters A-Z are taken as lower-case, as in a
    /// mail address, so `Alice@Jakarta` is `alice@jakarta`. The directory's own rule stays
    /// lower-case only (`init(_:)`, which the verifier uses), so every existing log stays valid
    /// and no two members' names differ only in case.
    public init(typed text: String) throws(NameError) {
        let lowered = String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            ("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 32)! : scalar
        }))
        try self.init(lowered)
    }

    public var description: String { value }
    public static func < (lhs: MemberName, rhs: MemberName) -> Bool { lhs.value < rhs.value }
}
