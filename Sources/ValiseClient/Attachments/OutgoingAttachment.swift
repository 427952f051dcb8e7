#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ValiseCrypto
public import ValiseSession

/// A file a person attaches with `valise send --attach`: encrypted once into the spool, its
/// reference carried by every recipient's message.
public struct OutgoingAttachment: Sendable {
    public let reference: AttachmentReference
    /// The blob's size and spool file.
    public let size: UInt64
    public let spoolPath: String

    /// Checks every file first (readable, a regular file, under the relay's limit when it is
    /// known), then encrypts each into the spool; nothing is left in the spool if any fails.
    public static func prepare(
        files: [String], home: ValiseHome, maximumBlobBytes: UInt64?, progress: (String, UInt64, UInt64) -> Void = { _, _, _ in }
    ) throws(ClientError) -> [OutgoingAttachment] {
        guard files.count <= AttachmentReference.maximumCount else {
            throw .usage("too-many-attachments", "at most \(AttachmentReference.maximumCount) files can be attached to one message; nothing was sent")
        }
        var checked: [(path: String, name: String, length: UInt64)] = []
        for path in files {
            let (_, length) = try StreamFile.openForReading(path)
            let name = Self.name(of: path)
            guard (1...AttachmentReference.maximumNameByteCount).contains(name.utf8.count) else {
                throw .usage("attachment-name", "\(path): the file's name must be 1 to \(AttachmentReference.maximumNameByteCount) bytes; nothing was sent")
            }
            guard length <= BlobFormat.maximumFileLength else { throw tooLarge(path, limit: nil) }
            if let limit = maximumBlobBytes, BlobFormat.blobSize(fileLength: length) > limit { throw tooLarge(path, limit: limit) }
            checked.append((path, name, length))
        }
        try home.preparePrivateFolder(home.spoolPath)
        var prepared: [OutgoingAttachment] = []
        do {
            for file in checked {
                let sealed = try AttachmentSealer.seal(file: file.path, into: home.spoolPath) { done in progress(file.name, done, file.length) }
                let reference = AttachmentReference(
                    blobID: sealed.blobID, key: sealed.key, length: sealed.length, hash: sealed.hash, name: file.name,
                    mediaType: AttachmentSealer.mediaType(forName: file.name))
                prepared.append(OutgoingAttachment(reference: reference, size: sealed.size, spoolPath: sealed.path))
            }
        } catch {
            for done in prepared { unlink(done.spoolPath) }
            throw error
        }
        return prepared
    }

    /// Removes the spool files of attachments that were never written to the outbox.
    public static func discard(_ attachments: [OutgoingAttachment]) {
        for attachment in attachments { unlink(attachment.spoolPath) }
    }

    /// The file's own name, as the recipient will see it (cleaned only when saved).
    static func name(of path: String) -> String {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        return trimmed.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? trimmed
    }

    static func tooLarge(_ path: String, limit: UInt64?) -> ClientError {
        let said = limit.map { "the relay takes attachments of at most \(ByteCount.describe($0)) (encrypted and padded)" } ?? "it is too large"
        return .usage("attachment-too-large", "\(path) cannot be attached: \(said); nothing was sent")
    }
}

/// Sizes for people: 1.5 MiB, 820 KiB, 12 bytes.
public enum ByteCount {
    public static func describe(_ bytes: UInt64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        guard bytes >= 1_024 else { return "\(bytes) byte\(bytes == 1 ? "" : "s")" }
        var value = Double(bytes) / 1_024
        var unit = 0
        while value >= 1_024 && unit < units.count - 1 {
            value /= 1_024
            unit += 1
        }
        return String(format: value < 10 ? "%.1f" : "%.0f", value) + " " + units[unit]
    }
}

/// What the outbox keeps for one blob to upload: the declaration (size, TTL class, who
/// fetches it), the spool file, and the reference (with its key) that messages will carry.
struct UploadRecord: Codable {
    struct Fetches: Codable, Equatable {
        var relay: String
        var count: UInt32
    }

    var size: UInt64
    var ttl: Int
    var path: String
    var fetches: [Fetches]

    /// u32 length ‖ JSON of the above ‖ the stored reference: sealed at rest as one value.
    func stored(with reference: AttachmentReference) throws -> SecretBytes {
        let json = [UInt8](try JSONEncoder().encode(self))
        let length = UInt32(json.count)
        let prefix = [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)] + json
        return SecretBytes.concatenating([SecretBytes(copying: prefix), reference.stored])
    }

    static func read(_ stored: SecretBytes) throws -> (UploadRecord, AttachmentReference) {
        let (json, rest) = try stored.withUnsafeBytes { raw -> ([UInt8], SecretBytes) in
            guard raw.count >= 4 else { throw FormatError.truncated("upload record") }
            let length = Int(raw[0]) << 24 | Int(raw[1]) << 16 | Int(raw[2]) << 8 | Int(raw[3])
            guard raw.count >= 4 + length else { throw FormatError.truncated("upload record") }
            return (Array(raw[4..<(4 + length)]), stored.slice((4 + length)..<raw.count))
        }
        return (try JSONDecoder().decode(UploadRecord.self, from: Data(json)), try AttachmentReference(stored: rest))
    }
}
