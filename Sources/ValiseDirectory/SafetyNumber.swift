public import ValiseCrypto

/// The number two members compare to be sure each has the other's real key: both members'
/// fingerprints (name and identity key), in ascending order, 60 digits in twelve groups of
/// five. The same whichever member computes it, and different as soon as either key changes.
public struct SafetyNumber: Hashable, Sendable, CustomStringConvertible {
    public let digits: String

    public init(_ a: (name: MemberName, identityKey: SigningPublicKey), _ b: (name: MemberName, identityKey: SigningPublicKey)) {
        let first = Fingerprint(identityKey: a.identityKey, memberName: a.name.value).digits
        let second = Fingerprint(identityKey: b.identityKey, memberName: b.name.value).digits
        digits = [first, second].sorted().joined()
    }

    public var description: String {
        stride(from: 0, to: digits.count, by: 5).map { offset in
            let start = digits.index(digits.startIndex, offsetBy: offset)
            return String(digits[start..<digits.index(start, offsetBy: 5)])
        }.joined(separator: " ")
    }
}
