#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ValiseCrypto
import ValiseDirectory
public import ValiseSession
public import ValiseStore

/// A received attachment as `valise read` shows it (never its key).
public struct InboxAttachment: Sendable, Encodable {
    public let position: Int
    public let name: String
    public let size: UInt64
    public let mediaType: String
    public let hash: String
    public let blobID: String
    public let state: String

    enum CodingKeys: String, CodingKey {
        case name, size, mediaType = "media_type", hash, blobID = "blob_id", state
    }
}

/// What the inbox record keeps of an attachment (the key is in the `attachment` table).
struct InboxAttachmentRecord: Codable {
    var name: String
    var size: UInt64
    var mediaType: String
    var hash: String
    var blobID: String
}

extension Messenger {
    // MARK: Sending

    /// Records one upload per blob, declaring one fetch per recipient device at each
    /// recipient's home relay (its name in the directory).
    func recordUploads(_ attachments: [OutgoingAttachment], for members: [Member], ttl: TTLClass, now: UInt64, tx: LocalStore.Transaction) throws {
        guard !attachments.isEmpty else { return }
        var counts: [String: UInt32] = [:]
        for member in members { counts[state.homeRelay(of: member.name)?.name ?? "", default: 0] += 1 }
        let fetches = counts.sorted { $0.key < $1.key }.map { UploadRecord.Fetches(relay: $0.key, count: $0.value) }
        for attachment in attachments {
            let record = UploadRecord(size: attachment.size, ttl: ttl.rawValue, path: attachment.spoolPath, fetches: fetches)
            try tx.addUpload(blobID: attachment.reference.blobID, data: try record.stored(with: attachment.reference), now: now)
        }
    }

    /// The references an outbox message carries, in the order attached.
    func attachmentReferences(_ item: OutboxItem, tx: LocalStore.Transaction) throws -> [AttachmentReference] {
        try tx.uploads(forMessage: item.id).map { upload in try UploadRecord.read(upload.data).1 }
    }

    /// A blob to upload, as MessageSync needs it.
    public struct Upload: Sendable {
        public let blobID: [UInt8]
        public let size: UInt64
        public let ttl: Int
        public let path: String
        public let fetches: [(relay: String, count: UInt32)]
    }

    /// Blobs the relay does not have whole yet.
    public func incompleteUploads() throws(ClientError) -> [Upload] {
        try storeOperation("read the outbox", write: false) { tx in
            try tx.incompleteUploads().map { upload in
                let (record, _) = try UploadRecord.read(upload.data)
                return Upload(blobID: upload.blobID, size: record.size, ttl: record.ttl, path: record.path, fetches: record.fetches.map { ($0.relay, $0.count) })
            }
        }
    }

    /// The relay has the whole blob: the messages that wait for it may go, and the spool
    /// file goes (after the commit: a crash in between leaves a file the next run removes).
    public func uploadCompleted(_ upload: Upload) throws(ClientError) {
        try storeOperation("record an upload") { tx in try tx.completeUpload(upload.blobID) }
        unlink(upload.path)
    }

    // MARK: Receiving

    /// Records a received message's attachments, pending, with their keys sealed apart.
    func recordReceived(_ attachments: [AttachmentReference], messageID: [UInt8], tx: LocalStore.Transaction) throws {
        for (position, reference) in attachments.enumerated() {
            try tx.addAttachment(messageID: messageID, position: position, blobID: reference.blobID, reference: reference.stored)
        }
    }

    static func inboxRecords(_ attachments: [AttachmentReference]) -> [InboxAttachmentRecord]? {
        attachments.isEmpty ? nil : attachments.map { reference in
            InboxAttachmentRecord(
                name: reference.name, size: reference.length, mediaType: reference.mediaType, hash: Hex.encode(reference.hash), blobID: Hex.encode(reference.blobID))
        }
    }

    /// A received attachment with what is needed to fetch, verify or save it.
    public struct StoredAttachment: Sendable {
        public let position: Int
        public let state: AttachmentState
        public let reference: AttachmentReference
    }

    /// A message's attachments (none for a message without any).
    public func attachments(of messageID: [UInt8]) throws(ClientError) -> [StoredAttachment] {
        try storeOperation("read the inbox", write: false) { tx in
            try tx.attachments(messageID: messageID).map { row in
                StoredAttachment(position: row.position, state: row.state, reference: try AttachmentReference(stored: row.reference))
            }
        }
    }

    public func setAttachmentState(messageID: [UInt8], position: Int, _ state: AttachmentState) throws(ClientError) {
        try storeOperation("record an attachment") { tx in try tx.setAttachmentState(messageID: messageID, position: position, state) }
    }

    /// What `valise read` shows of a message's attachments.
    public func attachmentViews(of messageID: [UInt8]) throws(ClientError) -> [InboxAttachment] {
        try attachments(of: messageID).map { stored in
            InboxAttachment(
                position: stored.position, name: stored.reference.name, size: stored.reference.length, mediaType: stored.reference.mediaType,
                hash: Hex.encode(stored.reference.hash), blobID: Hex.encode(stored.reference.blobID), state: stored.state.name)
        }
    }
}
