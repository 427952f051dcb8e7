import ValiseCrypto
public import ValiseDirectory

/// Reads a file that holds a directory log: an organisation bundle (`VALISEOB`) or a bare
/// log (`VALISEDL`), told apart by their magic bytes.
public enum DirectoryFileReader {
    public struct Contents: Sendable {
        public let entries: [DirectoryEntry]
        public let checkpoint: Checkpoint?
        public let isBundle: Bool

        /// As a bundle (a bare log becomes a bundle without a checkpoint).
        public var bundle: OrganisationBundle { OrganisationBundle(entries: entries, checkpoint: checkpoint) }
    }

    public static func read(_ path: String) throws(ClientError) -> Contents {
        let bytes = try PublicFile.read(path, maximumByteCount: DirectoryFiles.maximumLogByteCount)
        do throws(FormatError) {
            if bytes.starts(with: Array("VALISEOB".utf8)) {
                let bundle = try OrganisationBundle(decoding: bytes)
                return Contents(entries: bundle.entries, checkpoint: bundle.checkpoint, isBundle: true)
            }
            return Contents(entries: try DirectoryFiles.decodeLog(bytes), checkpoint: nil, isBundle: false)
        } catch {
            throw ClientError(error, file: path)
        }
    }
}
