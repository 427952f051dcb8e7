/// The text form of the public files people pass around (relay and admin public keys,
/// enrollment and rotation requests), pasteable into a mail like age or minisign keys
/// (docs/PROTOCOL.md, "Armor"):
///
///     -----BEGIN VALISE RELAY PUBLIC KEY-----
///     Comment: informational, never trusted
///     <standard base64 of the binary file, 64 columns>
///     -----END VALISE RELAY PUBLIC KEY-----
///
/// The armor only carries the binary form; what the binary form's signature says is what
/// counts, so comment lines are skipped unread.
public struct Armor: Sendable {
    /// A label names the kind of file, between `BEGIN VALISE ` and `-----`.
    public struct Label: Hashable, Sendable, CustomStringConvertible {
        public let text: String
        public init(_ text: String) { self.text = text }
        public var description: String { text.lowercased() }

        public static let relayPublicKey = Label("RELAY PUBLIC KEY")
        public static let adminPublicKey = Label("ADMIN PUBLIC KEY")
        public static let enrollmentRequest = Label("ENROLLMENT REQUEST")
        public static let rotationRequest = Label("ROTATION REQUEST")
    }

    /// No armored file is larger (a 4096-byte request takes about 5.6 KiB).
    public static let maximumByteCount = 16 * 1024
    static let lineLength = 64
    /// Readers take body lines up to this long, the MIME limit, in case a mail re-wrapped them.
    static let maximumLineLength = 76
    static let beginPrefix = "-----BEGIN VALISE "
    static let endPrefix = "-----END VALISE "
    static let dashes = "-----"
    static let commentPrefix = "Comment: "

    public let label: Label
    public let body: [UInt8]

    /// The armored text, lines ended by `\n`. Comment characters outside printable ASCII
    /// are replaced by `?`, so a comment never breaks a line or the file's ASCII.
    public static func encode(_ body: [UInt8], label: Label, comments: [String] = []) -> [UInt8] {
        var lines = [beginPrefix + label.text + dashes]
        for comment in comments {
            lines.append(commentPrefix + String(String.UnicodeScalarView(comment.unicodeScalars.map {
                (0x20...0x7E).contains($0.value) ? $0 : "?"
            })))
        }
        let text = Array(Base64.encode(body).utf8)
        var start = 0
        while start < text.count {
            let end = min(start + lineLength, text.count)
            lines.append(String(decoding: text[start..<end], as: UTF8.self))
            start = end
        }
        lines.append(endPrefix + label.text + dashes)
        return Array(lines.joined(separator: "\n").utf8) + [0x0A]
    }

    /// Whether `bytes` are armored: after any blank space, they start with `-----BEGIN `.
    /// (Every binary form starts with its `VALISE…` magic.)
    public static func isArmored(_ bytes: [UInt8]) -> Bool {
        let start = bytes.firstIndex { !isBlank($0) } ?? bytes.endIndex
        return bytes[start...].starts(with: "-----BEGIN ".utf8)
    }

    /// The binary form inside `bytes` if they are armored with one of `labels`, else `bytes`
    /// themselves (the binary form, which the caller parses).
    public static func binary(
        _ bytes: [UInt8], labels: Set<Label>, what: String
    ) throws(FormatError) -> (label: Label?, bytes: [UInt8]) {
        guard isArmored(bytes) else { return (nil, bytes) }
        let armor = try Armor(parsing: bytes, labels: labels, what: what)
        return (armor.label, armor.body)
    }

    /// Parses armored text whose label must be one of `labels`.
    public init(parsing bytes: [UInt8], labels: Set<Label>, what: String) throws(FormatError) {
        guard bytes.count <= Self.maximumByteCount else { throw .invalid(what, "file too large") }
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            // Mail may end lines with CR LF and add spaces at their ends.
            var end = line.endIndex
            while end > line.startIndex, [0x0D, 0x20, 0x09].contains(line[end - 1]) { end -= 1 }
            return line[line.startIndex..<end]
        }
        while lines.first?.isEmpty == true { lines.removeFirst() }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let first = lines.first, let label = Self.label(first, prefix: Self.beginPrefix) else {
            throw .invalid(what, "it does not start with a -----BEGIN VALISE …----- line")
        }
        guard labels.contains(label) else {
            let expected = labels.map(\.description).sorted().joined(separator: " or ")
            throw .invalid(what, "this is a Valise \(label), not a Valise \(expected)")
        }
        guard lines.count >= 2, let last = lines.last, Self.label(last, prefix: Self.endPrefix) != nil else {
            throw FormatError(code: "truncated", message: "\(what) is truncated: its -----END VALISE \(label.text)----- line is missing")
        }
        guard Self.label(last, prefix: Self.endPrefix) == label else {
            throw .invalid(what, "its END line does not name the kind its BEGIN line names")
        }
        var text: [UInt8] = []
        var inBody = false
        for line in lines.dropFirst().dropLast() {
            if !inBody && line.starts(with: Self.commentPrefix.utf8) { continue }
            inBody = true
            guard !line.isEmpty, line.count <= Self.maximumLineLength, line.allSatisfy(Self.isBase64Character) else {
                throw .invalid(what, "a line inside the armor is not a comment or base64")
            }
            text.append(contentsOf: line)
        }
        guard let body = Base64.decode(text) else { throw .invalid(what, "its base64 is not valid (altered or cut short?)") }
        self.label = label
        self.body = body
    }

    private static func label(_ line: ArraySlice<UInt8>, prefix: String) -> Label? {
        guard line.starts(with: prefix.utf8), line.count > prefix.utf8.count + dashes.utf8.count,
              line.reversed().starts(with: dashes.utf8.reversed()) else { return nil }
        let inner = line.dropFirst(prefix.utf8.count).dropLast(dashes.utf8.count)
        guard inner.allSatisfy({ (0x41...0x5A).contains($0) || $0 == 0x20 }) else { return nil }
        return Label(String(decoding: inner, as: UTF8.self))
    }

    private static func isBlank(_ byte: UInt8) -> Bool { [0x0A, 0x0D, 0x20, 0x09].contains(byte) }

    private static func isBase64Character(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
            || byte == 0x2B || byte == 0x2F || byte == 0x3D
    }
}
