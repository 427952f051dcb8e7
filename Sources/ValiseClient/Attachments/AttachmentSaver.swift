#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ValiseCrypto
public import ValiseSession
import ValiseStore

/// Writes a received attachment where a person asked (`valise save`): under a cleaned name,
/// decrypted into a 0600 temporary file in the destination folder, checked in full, and
/// only then given its name, never over an existing file.
public enum AttachmentSaver {
    /// The most bytes a saved name may have (most file systems' limit).
    public static let maximumNameByteCount = 255
    /// What a name that cleans down to nothing becomes.
    public static let fallbackName = "attachment"

    /// A sender's file name made safe to create in a folder: NFC; no `/` or `\`; no control
    /// characters (C0, DEL, C1) nor bidirectional controls (which can make `exe` read as
    /// `pdf`); no leading dots (no hidden files, no `..`); at most 255 bytes, keeping the
    /// extension; never empty.
    public static func sanitisedName(_ name: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in name.precomposedStringWithCanonicalMapping.unicodeScalars where !isRefused(scalar) {
            scalars.append(scalar)
        }
        var cleaned = Substring(String(scalars))
        while cleaned.first == "." { cleaned.removeFirst() }
        var result = String(cleaned)
        if result.utf8.count > maximumNameByteCount { result = shortened(result) }
        return result.isEmpty ? fallbackName : result
    }

    private static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x2F, 0x5C: true  // path separators
        case 0x00...0x1F, 0x7F, 0x80...0x9F: true  // C0, DEL, C1
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: true  // bidirectional controls
        default: false
        }
    }

    /// Cuts the name's stem (whole characters) so that stem ‖ extension fits in 255 bytes.
    private static func shortened(_ name: String) -> String {
        var stem = Substring(name)
        var ext = Substring("")
        if let dot = name.lastIndex(of: "."), dot != name.startIndex, name.utf8.distance(from: dot, to: name.endIndex) <= 32 {
            stem = name[..<dot]
            ext = name[dot...]
        }
        let room = maximumNameByteCount - ext.utf8.count
        var kept = ""
        var used = 0
        for character in stem {
            let size = character.utf8.count
            if used + size > room { break }
            kept.append(character)
            used += size
        }
        return kept + ext
    }

    /// Decrypts and verifies the blob in `blobPath` into `directory` under the cleaned name;
    /// returns the path written. Nothing appears under that name unless every check passed,
    /// and an existing file is never replaced.
    public static func save(blobAt blobPath: String, reference: AttachmentReference, into directory: String) throws(ClientError) -> String {
        let name = sanitisedName(reference.name)
        let final = (directory.hasSuffix("/") ? directory : directory + "/") + name
        if SecureFile.exists(final) { throw exists(final) }
        let temporary = (directory.hasSuffix("/") ? directory : directory + "/") + ".valise-save-" + Hex.encode(Random.bytes(count: 8)) + ".tmp"
        let output = try StreamFile.createExclusive(temporary)
        defer { unlink(temporary) }
        try AttachmentOpener.open(blobAt: blobPath, reference: reference, output: output)
        try output.sync()
        // link(2) fails on an existing name, where rename would replace it.
        guard link(temporary, final) == 0 else {
            if errno == EEXIST { throw exists(final) }
            throw StreamFile.failure("cannot write \(final)", errno)
        }
        try? SecureFile.syncDirectory(directory)
        return final
    }

    static func exists(_ path: String) -> ClientError {
        .failure("file-exists", "\(path) exists; nothing was written")
    }
}

/// What became of one attachment in `valise save`.
public struct SavedAttachment: Sendable, Encodable {
    public let name: String
    /// Where it was written, or nil.
    public let path: String?
    /// Why it was not, or nil.
    public let error: String?
}

extension AttachmentSaver {
    /// Saves each stored attachment of a message into `directory`; the others (pending,
    /// missing, refused) and every failure are reported, never written.
    public static func saveAll(_ attachments: [Messenger.StoredAttachment], home: ValiseHome, into directory: String) -> [SavedAttachment] {
        attachments.map { attachment in
            let name = attachment.reference.name
            guard attachment.state == .stored else {
                return SavedAttachment(name: name, path: nil, error: "\(name) is not here (\(attachment.state.name)); nothing was written")
            }
            do throws(ClientError) {
                let path = try save(blobAt: home.receivedBlobPath(attachment.reference.blobID), reference: attachment.reference, into: directory)
                return SavedAttachment(name: name, path: path, error: nil)
            } catch {
                return SavedAttachment(name: name, path: nil, error: error.message)
            }
        }
    }
}
