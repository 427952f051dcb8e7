import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseStore

/// Evidence of a directory fork met on a relay link, kept for an admin: for each sequence
/// where the other relay's entry differs from this relay's, both entries as pending-entry
/// files (docs/PROTOCOL.md, "Directory files"), in `DIR/fork-evidence/`, named
/// `SEQUENCE-RELAY-TIME-ours.pending` and `…-theirs.pending`. Each is signed by admins: the
/// two together prove the fork to anyone who holds the genesis.
enum ForkEvidenceFiles {
    static let folder = "fork-evidence"

    /// Writes the differing pairs among `theirs` (encoded entries from sequence `since`);
    /// returns how many. Best effort: a write that fails is logged by the caller.
    static func write(
        directory: String, relay: String, since: Int, theirs: [Data], ours: RelayDirectory.Snapshot, now: UInt64
    ) throws -> Int {
        var written = 0
        let folder = directory + "/" + Self.folder
        for (offset, encoded) in theirs.enumerated() {
            let sequence = since + offset
            guard sequence < ours.count, Array(encoded) != ours.encodedEntries[sequence],
                  let their = try? DirectoryEntry(decoding: Array(encoded)) else { continue }
            if written == 0 { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            let base = "\(folder)/\(sequence)-\(relay)-\(now)"
            try SecureFile.writeAtomically(DirectoryFiles.encodePending(ours.entries[sequence]), to: base + "-ours.pending")
            try SecureFile.writeAtomically(DirectoryFiles.encodePending(their), to: base + "-theirs.pending")
            written += 1
        }
        return written
    }
}
