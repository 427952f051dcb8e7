#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import ValiseCrypto
import ValiseSession
import ValiseStore

/// A file encrypted into a blob in the spool: what an `AttachmentReference` needs, and
/// where the blob waits for its upload.
public struct SealedBlob: Sendable {
    /// BLAKE2b-256 of the blob.
    public let blobID: [UInt8]
    /// The blob's fresh secretstream key.
    public let key: SymmetricKey
    /// The file's length.
    public let length: UInt64
    /// BLAKE2b-256 of the file.
    public let hash: [UInt8]
    /// The blob's size (`BlobFormat.blobSize(fileLength: length)`).
    public let size: UInt64
    /// The spool file (0600) that holds the blob.
    public let path: String
}

/// Encrypts a file into a blob (docs/PROTOCOL.md, "Attachments"), reading it 64 KiB at a
/// time and hashing the file and the blob as it goes: memory does not grow with the file.
public enum AttachmentSealer {
    /// Encrypts `path` into a new 0600 file in `directory` (which must exist and be private),
    /// named by the blob's id, written durably before this returns. `progress` gets the
    /// file bytes read so far.
    public static func seal(
        file path: String, into directory: String, progress: (UInt64) -> Void = { _ in }
    ) throws(ClientError) -> SealedBlob {
        let (input, length) = try StreamFile.openForReading(path)
        guard length <= BlobFormat.maximumFileLength else {
            throw .usage("attachment-too-large", "\(path) is too large to attach")
        }
        let key = SecretStream.makeKey()
        let partial = directory + "/.partial-" + Hex.encode(Random.bytes(count: 8))
        let output = try StreamFile.createExclusive(partial)
        do throws(ClientError) {
            let (blobID, hash) = try write(input: input, length: length, key: key, to: output, progress: progress)
            try output.sync()
            let final = directory + "/" + Hex.encode(blobID) + ".blob"
            guard rename(partial, final) == 0 else { throw StreamFile.failure("cannot write \(final)", errno) }
            do {
                try SecureFile.syncDirectory(directory)
            } catch {
                throw ClientError(error)
            }
            return SealedBlob(blobID: blobID, key: key, length: length, hash: hash, size: BlobFormat.blobSize(fileLength: length), path: final)
        } catch {
            unlink(partial)
            throw error
        }
    }

    /// Writes the blob; returns its id and the file's hash.
    private static func write(
        input: StreamFile, length: UInt64, key: SymmetricKey, to output: StreamFile, progress: (UInt64) -> Void
    ) throws(ClientError) -> (blobID: [UInt8], hash: [UInt8]) {
        var fileHash = BLAKE2b.Hasher(outputByteCount: 32)
        var blobHash = BLAKE2b.Hasher(outputByteCount: 32)
        var pusher = SecretStream.Pusher(key: key)
        let prefix = [BlobFormat.version] + pusher.header
        blobHash.update(prefix)
        try output.append(prefix)
        let chunks = BlobFormat.chunkCount(fileLength: length)
        var position: UInt64 = 0
        for index in 0..<chunks {
            let count = BlobFormat.chunkLength(index, fileLength: length)
            let fromFile = Int(min(UInt64(count), length - min(length, position)))
            var plaintext = try input.readPiece(upTo: fromFile)
            guard plaintext.count == fromFile else { throw .failure("file-changed", "\(input.shownAs) changed while it was being encrypted; attach it again") }
            fileHash.update(plaintext)
            // ISO/IEC 7816-4: 0x80 just after the file, zeros to the chunk's end.
            if plaintext.count < count {
                if position + UInt64(plaintext.count) == length { plaintext.append(BlobFormat.paddingMarker) }
                plaintext.append(contentsOf: repeatElement(0, count: count - plaintext.count))
            }
            let sealed = pusher.push(plaintext, tag: index == chunks - 1 ? .final : .message)
            wipe(&plaintext)
            blobHash.update(sealed)
            try output.append(sealed)
            position += UInt64(count)
            progress(min(position, length))
        }
        // A file that grew since it was measured would be attached cut short: refuse it.
        guard try input.readPiece(upTo: 1).isEmpty else {
            throw .failure("file-changed", "\(input.shownAs) changed while it was being encrypted; attach it again")
        }
        return (blobHash.finalize(), fileHash.finalize())
    }

    /// The media type a recipient is told, from the name's extension (a hint only: the
    /// recipient's system decides what to open it with).
    public static func mediaType(forName name: String) -> String {
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        let ext = name[name.index(after: dot)...].lowercased()
        return mediaTypes[ext] ?? "application/octet-stream"
    }

    static let mediaTypes: [String: String] = [
        "pdf": "application/pdf",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt": "application/vnd.oasis.opendocument.text",
        "ods": "application/vnd.oasis.opendocument.spreadsheet",
        "txt": "text/plain",
        "csv": "text/csv",
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "zip": "application/zip",
        "eml": "message/rfc822",
    ]
}
