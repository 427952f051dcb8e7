import Foundation
import GRDB
public import ValiseCrypto

/// Where a received attachment stands (docs/PROTOCOL.md, "Attachments").
public enum AttachmentState: Int, Sendable, Codable {
    /// Not downloaded yet: its message's envelope stays unacknowledged until it is.
    case pending = 0
    /// Downloaded, verified and kept encrypted under HOME/attachments (and the relay told).
    case stored = 1
    /// The relay no longer had it when the message's relay expiry had passed.
    case missing = 2
    /// It did not verify (altered or truncated): never written, nothing kept.
    case refused = 3

    public var name: String {
        switch self {
        case .pending: "pending"
        case .stored: "stored"
        case .missing: "missing"
        case .refused: "refused (tampered)"
        }
    }
}

/// A received attachment: its reference (the caller's encoding, with the key) sealed at rest.
public struct ReceivedAttachment: Sendable {
    public let messageID: [UInt8]
    public let position: Int
    public let blobID: [UInt8]
    public let state: AttachmentState
    public let reference: SecretBytes
}

/// A blob this device uploads: its declaration (the caller's encoding) and whether the
/// relay has all of it.
public struct PendingUpload: Sendable {
    public let blobID: [UInt8]
    public let complete: Bool
    public let createdAt: UInt64
    /// Sealed at rest: the declaration, the spool path and the attachment's reference (key).
    public let data: SecretBytes
}

extension LocalStore {
    /// `upload`: blobs to upload (one row per blob, kept until the messages that refer to it
    /// were encrypted); `upload_wait`: which outbox message waits for which blob;
    /// `attachment`: what received messages carry, with each reference sealed (its key
    /// never sits in a record that is printed).
    static let attachmentTables = """
        CREATE TABLE upload (
            blob_id BLOB PRIMARY KEY,
            complete INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            data BLOB NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE upload_wait (
            message_id BLOB NOT NULL,
            position INTEGER NOT NULL,
            blob_id BLOB NOT NULL,
            PRIMARY KEY (message_id, position)
        ) WITHOUT ROWID;
        CREATE INDEX upload_wait_blob ON upload_wait (blob_id);
        CREATE TABLE attachment (
            message_id BLOB NOT NULL,
            position INTEGER NOT NULL,
            blob_id BLOB NOT NULL,
            state INTEGER NOT NULL,
            reference BLOB NOT NULL,
            PRIMARY KEY (message_id, position)
        ) WITHOUT ROWID;
        """
}

extension LocalStore.Transaction {
    // MARK: Uploads

    public func addUpload(blobID: [UInt8], data: SecretBytes, now: UInt64) throws {
        try db.execute(
            sql: "INSERT OR IGNORE INTO upload (blob_id, created_at, data) VALUES (?, ?, ?)",
            arguments: [Data(blobID), Int64(clamping: now), store.seal(data, table: "upload", row: blobID)])
    }

    /// Makes an outbox message wait for a blob's upload.
    public func addUploadWait(messageID: [UInt8], position: Int, blobID: [UInt8]) throws {
        try db.execute(
            sql: "INSERT OR IGNORE INTO upload_wait (message_id, position, blob_id) VALUES (?, ?, ?)", arguments: [Data(messageID), position, Data(blobID)])
    }

    public func upload(_ blobID: [UInt8]) throws -> PendingUpload? {
        try Row.fetchOne(db, sql: "SELECT * FROM upload WHERE blob_id = ?", arguments: [Data(blobID)]).map { row in try upload(row) }
    }

    /// Uploads the relay does not have whole yet, oldest first.
    public func incompleteUploads() throws -> [PendingUpload] {
        try Row.fetchAll(db, sql: "SELECT * FROM upload WHERE complete = 0 ORDER BY created_at").map { row in try upload(row) }
    }

    private func upload(_ row: Row) throws -> PendingUpload {
        let blobID = [UInt8](try row.value("blob_id", as: Data.self))
        return PendingUpload(
            blobID: blobID, complete: (try row.value("complete", as: Int.self)) != 0, createdAt: try row.unsigned("created_at", as: UInt64.self),
            data: try store.openSecret(try row.value("data"), table: "upload", row: blobID))
    }

    public func completeUpload(_ blobID: [UInt8]) throws {
        try db.execute(sql: "UPDATE upload SET complete = 1 WHERE blob_id = ?", arguments: [Data(blobID)])
    }

    /// Whether a message still waits for an upload that is not complete.
    public func waitsForUpload(messageID: [UInt8]) throws -> Bool {
        try Int.fetchOne(
            db, sql: "SELECT 1 FROM upload_wait JOIN upload USING (blob_id) WHERE message_id = ? AND complete = 0 LIMIT 1",
            arguments: [Data(messageID)]) != nil
    }

    /// The blobs a message refers to, in the order they were attached.
    public func uploads(forMessage messageID: [UInt8]) throws -> [PendingUpload] {
        try Row.fetchAll(
            db, sql: "SELECT upload.* FROM upload_wait JOIN upload USING (blob_id) WHERE message_id = ? ORDER BY upload_wait.position",
            arguments: [Data(messageID)]).map { row in try upload(row) }
    }

    /// Forgets a message's waits once it is encrypted, and each upload no message needs any
    /// more (its key goes with it).
    public func finishUploadWaits(messageID: [UInt8]) throws {
        try db.execute(sql: "DELETE FROM upload_wait WHERE message_id = ?", arguments: [Data(messageID)])
        try db.execute(sql: "DELETE FROM upload WHERE complete = 1 AND blob_id NOT IN (SELECT blob_id FROM upload_wait)")
    }

    // MARK: Received attachments

    public func addAttachment(messageID: [UInt8], position: Int, blobID: [UInt8], reference: SecretBytes) throws {
        let row = messageID + [UInt8(truncatingIfNeeded: position)]
        try db.execute(
            sql: "INSERT OR IGNORE INTO attachment (message_id, position, blob_id, state, reference) VALUES (?, ?, ?, ?, ?)",
            arguments: [Data(messageID), position, Data(blobID), AttachmentState.pending.rawValue, store.seal(reference, table: "attachment", row: row)])
    }

    public func attachments(messageID: [UInt8]) throws -> [ReceivedAttachment] {
        try Row.fetchAll(db, sql: "SELECT * FROM attachment WHERE message_id = ? ORDER BY position", arguments: [Data(messageID)]).map { row in
            let position: Int = try row.value("position")
            return ReceivedAttachment(
                messageID: messageID, position: position, blobID: [UInt8](try row.value("blob_id", as: Data.self)),
                state: AttachmentState(rawValue: try row.value("state")) ?? .refused,
                reference: try store.openSecret(try row.value("reference"), table: "attachment", row: messageID + [UInt8(truncatingIfNeeded: position)]))
        }
    }

    public func setAttachmentState(messageID: [UInt8], position: Int, _ state: AttachmentState) throws {
        try db.execute(
            sql: "UPDATE attachment SET state = ? WHERE message_id = ? AND position = ?", arguments: [state.rawValue, Data(messageID), position])
    }
}
