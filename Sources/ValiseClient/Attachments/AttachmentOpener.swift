import ValiseCrypto
import ValiseSession

/// Reads a blob back (docs/PROTOCOL.md, "Attachments") and checks all of it against the
/// message's reference: its size for the file's length, the version, every secretstream
/// chunk with FINAL on the last only, the padding, the file's hash and the blob's id. It
/// streams 64 KiB at a time; the plaintext goes only to `output`, and a caller that gets an
/// error must discard whatever was written there.
public enum AttachmentOpener {
    /// Verifies the blob in `path`; with `output`, writes the file's bytes there as they are
    /// read (the caller publishes them only if this returns).
    static func open(blobAt path: String, reference: AttachmentReference, output: StreamFile? = nil) throws(ClientError) {
        let (input, size) = try StreamFile.openForReading(path)
        try verify(input: input, size: size, reference: reference, output: output)
    }

    public static let tamperedCode = "attachment-tampered"

    /// A blob that is not what its reference says.
    public static func tampered(_ why: String) -> ClientError {
        .failure(tamperedCode, "the attachment was refused: \(why) (altered or truncated on the way)")
    }

    static func verify(input: StreamFile, size: UInt64, reference: AttachmentReference, output: StreamFile?) throws(ClientError) {
        let length = reference.length
        guard length <= BlobFormat.maximumFileLength else { throw tampered("its length is impossible") }
        guard size == BlobFormat.blobSize(fileLength: length) else { throw tampered("its size does not match the file's length") }
        var blobHash = BLAKE2b.Hasher(outputByteCount: 32)
        var fileHash = BLAKE2b.Hasher(outputByteCount: 32)
        let prefix = try input.readPiece(upTo: BlobFormat.prefixByteCount)
        guard prefix.count == BlobFormat.prefixByteCount else { throw tampered("it is cut short") }
        guard prefix[0] == BlobFormat.version else { throw tampered("it is of an unknown version (\(prefix[0]))") }
        blobHash.update(prefix)
        var puller: SecretStream.Puller
        do {
            puller = try SecretStream.Puller(key: reference.key, header: Array(prefix[1...]))
        } catch {
            throw tampered("its header is unusable")
        }
        let chunks = BlobFormat.chunkCount(fileLength: length)
        var position: UInt64 = 0
        for index in 0..<chunks {
            let count = BlobFormat.chunkLength(index, fileLength: length)
            let sealed = try input.readPiece(upTo: count + SecretStream.overheadByteCount)
            guard sealed.count == count + SecretStream.overheadByteCount else { throw tampered("it is cut short") }
            blobHash.update(sealed)
            let pulled: (plaintext: [UInt8], tag: SecretStream.Tag)
            do {
                pulled = try puller.pull(sealed)
            } catch {
                throw tampered("a part does not decrypt")
            }
            var plaintext = pulled.plaintext
            let tag = pulled.tag
            defer { wipe(&plaintext) }
            let last = index == chunks - 1
            guard tag == (last ? .final : .message) else { throw tampered(last ? "its end is not marked" : "it ends early") }
            let fileBytes = Int(min(UInt64(count), length - min(length, position)))
            try checkPadding(plaintext, from: fileBytes, markerHere: position + UInt64(fileBytes) == length)
            if fileBytes > 0 {
                let piece = fileBytes == plaintext.count ? plaintext : Array(plaintext[..<fileBytes])
                fileHash.update(piece)
                try output?.append(piece)
            }
            position += UInt64(count)
        }
        guard try input.readPiece(upTo: 1).isEmpty else { throw tampered("bytes follow its end") }
        guard constantTimeEquals(fileHash.finalize(), reference.hash) else { throw tampered("the file's hash does not match") }
        guard constantTimeEquals(blobHash.finalize(), reference.blobID) else { throw tampered("the blob's id does not match") }
    }

    /// Padding is 0x80 right after the file's last byte, then zeros: anything else is refused.
    private static func checkPadding(_ plaintext: [UInt8], from start: Int, markerHere: Bool) throws(ClientError) {
        guard start < plaintext.count else { return }
        var index = start
        if markerHere {
            guard plaintext[index] == BlobFormat.paddingMarker else { throw tampered("its padding is wrong") }
            index += 1
        }
        var accumulated: UInt8 = 0
        while index < plaintext.count {
            accumulated |= plaintext[index]
            index += 1
        }
        guard accumulated == 0 else { throw tampered("its padding is wrong") }
    }
}
