import ValiseCrypto

/// What a session message's plaintext holds (docs/PROTOCOL.md, "Message contents"): a text
/// for a person to read, a delivery receipt for messages received, or a text that came as
/// part of a circular or with attached files.
///
///     u8 version (1) ‖ u8 kind ‖ body
///     kind 1, text:    u32 length ‖ UTF-8 text (1…200,000 bytes)
///     kind 2, receipt: u8 count (1…64) ‖ message id (16)…
///     kind 3, message: u32 length ‖ UTF-8 text (0…200,000 bytes)
///                      ‖ u16 selector length (0: not a circular; else 1…512) ‖ UTF-8 selector
///                      ‖ u8 attachment count (0…32) ‖ attachment…  (AttachmentReference)
public enum MessageContent: Sendable, Equatable {
    case text(String)
    case receipt([[UInt8]])
    case message(Message)

    /// A kind-3 message: a text (empty only when files are attached), the circular it was
    /// part of (the selector the sender wrote, such as `mission:geneva,bob@nairobi`), and
    /// the attached files.
    public struct Message: Sendable, Equatable {
        public var text: String
        public var circular: String?
        public var attachments: [AttachmentReference]

        public static let maximumSelectorByteCount = 512

        public init(text: String, circular: String? = nil, attachments: [AttachmentReference] = []) {
            self.text = text
            self.circular = circular
            self.attachments = attachments
        }
    }

    /// The content for a text, with its circular's selector and attachments when there are
    /// any: kind 1 when there are none, so that a plain note is encoded as before.
    public static func make(text: String, circular: String?, attachments: [AttachmentReference]) -> MessageContent {
        if circular == nil && attachments.isEmpty { return .text(text) }
        return .message(Message(text: text, circular: circular, attachments: attachments))
    }

    /// The text a person reads, whatever the kind (empty for a receipt).
    public var readableText: String {
        switch self {
        case .text(let text): text
        case .receipt: ""
        case .message(let message): message.text
        }
    }

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
        case .message(let message):
            precondition(message.text.utf8.count <= Self.maximumTextByteCount, "text checked by the caller")
            precondition((message.circular?.utf8.count ?? 0) <= Message.maximumSelectorByteCount, "selector checked by the caller")
            precondition(message.attachments.count <= AttachmentReference.maximumCount, "attachments checked by the caller")
            var writer = ByteWriter(capacity: 16 + message.text.utf8.count + message.attachments.count * 200)
            writer.write(Self.version)
            writer.write(UInt8(3))
            writer.write(UInt32(message.text.utf8.count))
            writer.write(message.text.utf8)
            writer.write(UInt16(message.circular?.utf8.count ?? 0))
            if let circular = message.circular { writer.write(circular.utf8) }
            writer.write(UInt8(message.attachments.count))
            for attachment in message.attachments { attachment.write(to: &writer) }
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
                case 3:
                    return .message(try Self.readMessage(&reader))
                default:
                    throw .invalid("message contents", "unknown kind")
                }
            }
        } catch {
            throw SessionError(code: "bad-contents", message: "the message's contents do not parse (\(error.message))")
        }
    }

    private static func readMessage(_ reader: inout ByteReader) throws(FormatError) -> Message {
        let length = Int(try reader.readUInt32())
        guard length <= Self.maximumTextByteCount else { throw .invalid("message contents", "the text's length is out of range") }
        guard let text = String(validating: try reader.readBytes(length), as: UTF8.self) else { throw .invalid("message contents", "the text is not UTF-8") }
        let selectorLength = Int(try reader.readUInt16())
        guard selectorLength <= Message.maximumSelectorByteCount else { throw .invalid("message contents", "the circular's selector is too long") }
        var circular: String?
        if selectorLength > 0 {
            guard let selector = String(validating: try reader.readBytes(selectorLength), as: UTF8.self) else {
                throw .invalid("message contents", "the circular's selector is not UTF-8")
            }
            circular = selector
        }
        let count = Int(try reader.readUInt8())
        guard count <= AttachmentReference.maximumCount else { throw .invalid("message contents", "too many attachments") }
        var attachments: [AttachmentReference] = []
        for _ in 0..<count { attachments.append(try AttachmentReference.read(from: &reader)) }
        try reader.expectEnd()
        guard !text.isEmpty || !attachments.isEmpty else { throw .invalid("message contents", "a message with neither text nor attachment") }
        return Message(text: text, circular: circular, attachments: attachments)
    }
}
