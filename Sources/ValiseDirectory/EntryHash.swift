public import ValiseCrypto

/// The BLAKE2b-256 hash of a directory entry's signed part; it names the entry, chains it to
/// the next one, and (for the genesis) identifies the organisation.
public struct EntryHash: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let byteCount = 32
    /// The "previous hash" of the genesis entry.
    public static let zero = EntryHash(uncheckedBytes: [UInt8](repeating: 0, count: byteCount))

    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(FormatError) {
        guard bytes.count == Self.byteCount else {
            throw .invalid("entry hash", "must be \(Self.byteCount) bytes")
        }
        self.bytes = bytes
    }

    init(uncheckedBytes: [UInt8]) { self.bytes = uncheckedBytes }

    /// Parses 64 hexadecimal digits (as `valise admin show` prints them).
    public init?(hex: String) {
        guard let bytes = Hex.decode(hex), bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// The hash of `signedBytes`.
    static func of(_ signedBytes: [UInt8]) -> EntryHash {
        EntryHash(uncheckedBytes: BLAKE2b.hash(signedBytes, outputByteCount: byteCount))
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
    /// The first 16 hex digits, for messages.
    public var short: String { String(hex.prefix(16)) }

    public static func < (lhs: EntryHash, rhs: EntryHash) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}
