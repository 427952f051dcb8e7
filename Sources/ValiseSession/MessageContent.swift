import ValiseCrypto

/// What a session message's plaintext holds (docs/PROTOCOL.md, "Message contents"): a text
/// for a person to read, or a delivery receipt for messages received.
///
///     u8 version (1) ‖ u8 kind ‖ body
///     kind 1, text:    u32 length ‖ UTF-8 text (at most 200,000 bytes)
///     kind 2, receipt: u8 count (1…64) ‖ message id (16)…
public enum MessageContent: Sendable, Equatable {
    case text(String)
    case receipt([[UInt8]])

    public static let version: UInt8 = 1
    public static let maximumTextByteCount = 200_000
    public static let maximumReceiptIDs = 64

    public var encoded: [UInt8] {
        switch self {
        case .text(let text):
            var writer = ByteWriter(capacity: 6 + text.utf8.count)
            writer.write(Self.version)
            writer.write(UInt8(1))
            writer.write(UInt32(text.utf8.count))
            writer.write(text.utf8)
            return writer.bytes
        case .receipt(let ids):
            var writer = ByteWriter(capacity: 3 + ids.count * SealedEnvelope.idByteCount)
            writer.write(Self.version)
            writer.write(UInt8(2))
            writer.write(UInt8(ids.count))
            for id in ids { writer.write(id) }
            return writer.bytes
        }
    }

    public init(decoding bytes: [UInt8]) throws(SessionError) {
        do {
            self = try ByteReader.read(bytes, context: "message contents") { (reader, _) throws(FormatError) -> MessageContent in
                let version = try reader.readUInt8()
                guard version == Self.version else { throw .unsupportedVersion("message contents", Int(version)) }
                switch try reader.readUInt8() {
                case 1:
                    let length = Int(try reader.readUInt32())
                    guard (1...Self.maximumTextByteCount).contains(length) else { throw .invalid("message contents", "the text's length is out of range") }
                    let utf8 = try reader.readBytes(length)
                    try reader.expectEnd()
                    guard let text = String(validating: utf8, as: UTF8.self) else { throw .invalid("message contents", "the text is not UTF-8") }
                    return .text(text)
                case 2:
                    let count = Int(try reader.readUInt8())
                    guard (1...Self.maximumReceiptIDs).contains(count) else { throw .invalid("message contents", "receipt count") }
                    var ids: [[UInt8]] = []
                    for _ in 0..<count { ids.append(try reader.readBytes(SealedEnvelope.idByteCount)) }
                    try reader.expectEnd()
                    return .receipt(ids)
                default:
                    throw .invalid("message contents", "unknown kind")
                }
            }
        } catch {
            throw SessionError(code: "bad-contents", message: "the message's contents do not parse (\(error.message))")
        }
    }
}
