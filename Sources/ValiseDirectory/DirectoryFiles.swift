public import ValiseCrypto

/// The files that carry directory entries (docs/PROTOCOL.md, "Directory files"). Each starts
/// with eight magic bytes and a version; entries are `u32 length ‖ entry`.
public enum DirectoryFiles {
    /// No directory file is larger; a larger one is refused before it is read.
    public static let maximumLogByteCount = 512 * 1024 * 1024

    static let logMagic = Array("VALISEDL".utf8)
    static let bundleMagic = Array("VALISEOB".utf8)
    static let pendingMagic = Array("VALISEPE".utf8)
    static let version: UInt8 = 1

    /// A log: magic `VALISEDL` ‖ u8 1 ‖ u32 count ‖ entries.
    public static func encodeLog(_ entries: [DirectoryEntry]) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(logMagic)
        writer.write(version)
        writeEntries(entries, to: &writer)
        return writer.bytes
    }

    public static func decodeLog(_ bytes: [UInt8]) throws(FormatError) -> [DirectoryEntry] {
        guard bytes.count <= maximumLogByteCount else { throw .invalid("directory log", "file too large") }
        return try ByteReader.read(bytes, context: "directory log") { (reader, raw) throws(FormatError) -> [DirectoryEntry] in
            try reader.expectMagic(logMagic, version: version, what: "a Valise directory log")
            let entries = try readEntries(&reader, raw)
            guard !entries.isEmpty else { throw .invalid(reader.context, "it holds no entries, not even a genesis") }
            try reader.expectEnd()
            return entries
        }
    }

    /// An entry waiting for co-signatures: magic `VALISEPE` ‖ u8 1 ‖ u32 length ‖ entry.
    public static func encodePending(_ entry: DirectoryEntry) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(pendingMagic)
        writer.write(version)
        writeEntries([entry], to: &writer, counted: false)
        return writer.bytes
    }

    public static func decodePending(_ bytes: [UInt8]) throws(FormatError) -> DirectoryEntry {
        guard bytes.count <= 64 * 1024 else { throw .invalid("pending entry", "file too large") }
        return try ByteReader.read(bytes, context: "pending entry") { (reader, raw) throws(FormatError) -> DirectoryEntry in
            try reader.expectMagic(pendingMagic, version: version, what: "a pending Valise directory entry")
            let entry = try readEntry(&reader, raw)
            try reader.expectEnd()
            return entry
        }
    }

    static func writeEntries(_ entries: [DirectoryEntry], to writer: inout ByteWriter, counted: Bool = true) {
        if counted { writer.write(UInt32(entries.count)) }
        for entry in entries {
            let encoded = entry.encoded()
            writer.write(UInt32(encoded.count))
            writer.write(encoded)
        }
    }

    static func readEntries(_ reader: inout ByteReader, _ raw: UnsafeRawBufferPointer) throws(FormatError) -> [DirectoryEntry] {
        let count = Int(try reader.readUInt32())
        guard count <= DirectoryVerifier.maximumEntries else { throw .invalid(reader.context, "too many entries") }
        // Each entry takes at least 4 + 54 bytes: a count larger than the file allows is a lie.
        guard count <= reader.remainingCount / 58 else { throw .truncated(reader.context) }
        var entries: [DirectoryEntry] = []
        entries.reserveCapacity(count)
        for index in 0..<count {
            let entry = try readEntry(&reader, raw)
            // Logs and bundles hold every entry from the genesis, in order.
            guard entry.sequence == UInt64(index) else {
                throw .invalid(reader.context, "entry \(index) says it is entry \(entry.sequence); entries must be stored in order from the genesis")
            }
            entries.append(entry)
        }
        return entries
    }

    static func readEntry(_ reader: inout ByteReader, _ raw: UnsafeRawBufferPointer) throws(FormatError) -> DirectoryEntry {
        let context = reader.context
        let length = Int(try reader.readUInt32())
        guard length <= reader.remainingCount else { throw .truncated(context) }
        let start = reader.offset
        let entry = try DirectoryEntry(reading: &reader, bytes: raw)
        guard reader.offset - start == length else { throw .invalid(reader.context, "entry length does not match its contents") }
        reader.context = context
        return entry
    }
}
