public import ValiseCrypto

/// What an end-to-end message says of one attached file (docs/PROTOCOL.md, "Attachments"):
/// where its encrypted blob is (the blob's id at the relay), the key that opens it, and
/// what the file is. Only the message's recipients ever see it; the relay sees the blob's
/// id and padded size only.
///
///     blob id (32) ‖ key (32) ‖ u64 length ‖ hash (32) ‖ u16 name length ‖ UTF-8 name
///     ‖ u8 type length ‖ ASCII media type
public struct AttachmentReference: Sendable, Equatable, CustomStringConvertible {
    public static let blobIDByteCount = 32
    public static let hashByteCount = 32
    /// Names are bounded as sent; `valise save` shortens and cleans them again.
    public static let maximumNameByteCount = 1024
    public static let maximumMediaTypeByteCount = 127
    public static let maximumCount = 32

    /// BLAKE2b-256 of the blob (the file's ciphertext), which names it at the relay.
    public let blobID: [UInt8]
    /// The blob's secretstream key.
    public let key: SymmetricKey
    /// The file's length in bytes (before padding and encryption).
    public let length: UInt64
    /// BLAKE2b-256 of the file's bytes.
    public let hash: [UInt8]
    /// The file name as the sender gave it (not yet safe to write anywhere).
    public let name: String
    /// A media type such as `application/pdf`, or empty when unknown.
    public let mediaType: String

    public init(blobID: [UInt8], key: SymmetricKey, length: UInt64, hash: [UInt8], name: String, mediaType: String) {
        precondition(blobID.count == Self.blobIDByteCount && hash.count == Self.hashByteCount, "attachment id and hash are 32 bytes")
        self.blobID = blobID
        self.key = key
        self.length = length
        self.hash = hash
        self.name = name
        self.mediaType = mediaType
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.blobID == rhs.blobID && lhs.key.constantTimeEquals(rhs.key) && lhs.length == rhs.length && lhs.hash == rhs.hash
            && lhs.name == rhs.name && lhs.mediaType == rhs.mediaType
    }

    public var description: String { "AttachmentReference(\(name), \(length) bytes, key redacted)" }

    func write(to writer: inout ByteWriter) {
        writer.write(blobID)
        key.rawRepresentation.withUnsafeBytes { writer.write(Array($0)) }
        writer.write(length)
        writer.write(hash)
        writer.write(UInt16(name.utf8.count))
        writer.write(name.utf8)
        writer.write(UInt8(mediaType.utf8.count))
        writer.write(mediaType.utf8)
    }

    static func read(from reader: inout ByteReader) throws(FormatError) -> AttachmentReference {
        let blobID = try reader.readBytes(blobIDByteCount)
        let key: SymmetricKey
        do {
            key = try SymmetricKey(try reader.readSecret(SymmetricKey.byteCount))
        } catch let error as FormatError {
            throw error
        } catch {
            throw .invalid("message contents", "an attachment's key")
        }
        let length = try reader.readUInt64()
        let hash = try reader.readBytes(hashByteCount)
        let nameLength = Int(try reader.readUInt16())
        guard (1...maximumNameByteCount).contains(nameLength) else { throw .invalid("message contents", "an attachment's name length is out of range") }
        guard let name = String(validating: try reader.readBytes(nameLength), as: UTF8.self) else {
            throw .invalid("message contents", "an attachment's name is not UTF-8")
        }
        let typeLength = Int(try reader.readUInt8())
        guard typeLength <= maximumMediaTypeByteCount else { throw .invalid("message contents", "an attachment's media type is too long") }
        let typeBytes = try reader.readBytes(typeLength)
        guard typeBytes.allSatisfy({ (0x21...0x7E).contains($0) }), let mediaType = String(validating: typeBytes, as: UTF8.self) else {
            throw .invalid("message contents", "an attachment's media type is not printable ASCII")
        }
        return AttachmentReference(blobID: blobID, key: key, length: length, hash: hash, name: name, mediaType: mediaType)
    }
}
