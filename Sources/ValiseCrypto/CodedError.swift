/// An error with a stable machine-readable code and a message a person can act on (the
/// swift-nio-ssh habit: structs with static members, so new kinds break no caller).
/// Two errors are equal when their codes are, so tests and callers can match on the kind
/// (`#expect(throws: CryptoError.authenticationFailed)`) whatever the message's details.
public protocol CodedError: Error, Hashable, Sendable, CustomStringConvertible {
    var code: String { get }
    var message: String { get }
}

extension CodedError {
    public var description: String { message }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
