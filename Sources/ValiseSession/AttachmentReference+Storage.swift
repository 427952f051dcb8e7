public import ValiseCrypto

extension AttachmentReference {
    /// The reference as the message carries it, in guarded memory (it holds the key), for the
    /// local store.
    public var stored: SecretBytes {
        var writer = ByteWriter(capacity: 160 + name.utf8.count)
        write(to: &writer)
        var bytes = writer.bytes
        defer { wipe(&bytes) }
        return SecretBytes(copying: bytes)
    }

    /// Reads back `stored`, with the checks a received message gets.
    public init(stored: SecretBytes) throws(FormatError) {
        let result: Result<AttachmentReference, FormatError> = stored.withUnsafeBytes { raw in
            var reader = ByteReader(raw, context: "stored attachment")
            do throws(FormatError) {
                let reference = try Self.read(from: &reader)
                try reader.expectEnd()
                return .success(reference)
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }
}
