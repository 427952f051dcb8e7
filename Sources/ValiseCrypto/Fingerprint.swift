/// A human-comparable fingerprint of a member's identity key: 30 decimal digits in six groups
/// of five, read aloud or compared on paper to check a key out of band, as Signal's safety
/// numbers are.
///
/// digest_0 = SHA-512("valise/v1/fingerprint" ‖ 0x00 ‖ u16be(len(name)) ‖ name ‖ key)
/// digest_i = SHA-512(digest_{i-1} ‖ key), 5200 times;
/// the first 30 bytes, in six 5-byte big-endian groups, each mod 100000, five digits each.
/// The iterations make grinding for a look-alike key costly; the member name binds the
/// fingerprint to whom the key belongs.
public struct Fingerprint: Hashable, Sendable, CustomStringConvertible {
    public static let iterations = 5200
    public static let groupCount = 6

    /// The 30 digits without spaces.
    public let digits: String

    public init(identityKey: SigningPublicKey, memberName: String) {
        let name = Array(memberName.utf8)
        precondition(name.count <= Int(UInt16.max), "member name too long for a fingerprint")
        var digest = SHA512.hash(
            Array("valise/v1/fingerprint".utf8) + [0, UInt8(name.count >> 8), UInt8(name.count & 0xff)]
                + name + identityKey.bytes
        )
        for _ in 1..<Self.iterations {
            digest = SHA512.hash(digest + identityKey.bytes)
        }
        var text = ""
        for group in 0..<Self.groupCount {
            var value: UInt64 = 0
            for byte in digest[(group * 5)..<(group * 5 + 5)] { value = value << 8 | UInt64(byte) }
            let number = String(value % 100_000)
            text += String(repeating: "0", count: 5 - number.count) + number
        }
        self.digits = text
    }

    /// The digits in groups of five, separated by spaces.
    public var description: String {
        var groups: [Substring] = []
        var rest = Substring(digits)
        while !rest.isEmpty {
            groups.append(rest.prefix(5))
            rest = rest.dropFirst(5)
        }
        return groups.joined(separator: " ")
    }
}
