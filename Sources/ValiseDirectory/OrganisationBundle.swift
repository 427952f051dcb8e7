public import ValiseCrypto

/// What a staff device pins: the genesis hash, the log so far (from which the relays'
/// addresses and keys come), and the newest checkpoint if there is one.
///
/// Encoding: magic `VALISEOB` ‖ u8 1 ‖ genesis hash ‖ u32 count ‖ entries ‖ u8 has-checkpoint ‖ [checkpoint].
public struct OrganisationBundle: Sendable {
    public let genesisHash: EntryHash
    public let entries: [DirectoryEntry]
    public let checkpoint: Checkpoint?

    public init(entries: [DirectoryEntry], checkpoint: Checkpoint?) {
        precondition(!entries.isEmpty, "a bundle holds at least the genesis")
        self.genesisHash = entries[0].hash
        self.entries = entries
        self.checkpoint = checkpoint
    }

    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(DirectoryFiles.bundleMagic)
        writer.write(DirectoryFiles.version)
        writer.write(genesisHash.bytes)
        DirectoryFiles.writeEntries(entries, to: &writer)
        if let checkpoint {
            writer.write(UInt8(1))
            writer.write(checkpoint.encoded())
        } else {
            writer.write(UInt8(0))
        }
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(FormatError) {
        guard bytes.count <= DirectoryFiles.maximumLogByteCount else { throw .invalid("organisation bundle", "file too large") }
        self = try ByteReader.read(bytes, context: "organisation bundle") { (reader, raw) throws(FormatError) -> OrganisationBundle in
            try reader.expectMagic(DirectoryFiles.bundleMagic, version: DirectoryFiles.version, what: "a Valise organisation bundle")
            let genesis = try reader.readHash()
            let entries = try DirectoryFiles.readEntries(&reader, raw)
            guard let first = entries.first else { throw .invalid(reader.context, "it holds no genesis") }
            guard first.hash == genesis else { throw .invalid(reader.context, "its genesis hash does not match its first entry") }
            let checkpoint: Checkpoint?
            switch try reader.readUInt8() {
            case 0: checkpoint = nil
            case 1: checkpoint = try Checkpoint(reading: &reader)
            default: throw .invalid(reader.context, "invalid checkpoint flag")
            }
            try reader.expectEnd()
            return OrganisationBundle(entries: entries, checkpoint: checkpoint)
        }
    }
}
