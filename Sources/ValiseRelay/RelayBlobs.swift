import Dispatch
import Foundation
import Logging
import ValiseCrypto
import ValiseStore
import ValiseWire

/// The relay's side of attachment blobs (docs/PROTOCOL.md, "Blobs"): what a device's
/// checked BlobUpload, BlobChunk, BlobFetch and BlobFetched do to the blob store, with the
/// quotas. Every method blocks on the store: each connection runs them on its `BlobLane`,
/// one after the other, so that pipelined requests are answered in order and never on an
/// event loop.
final class RelayBlobs: Sendable {
    let store: any BlobStore
    let ledger: BlobLedger
    /// queue.maxBlobStoreBytes: the declared sizes of all blobs held, at most.
    let maximumStoreBytes: UInt64
    /// Bytes free on the disk the blobs are on (nil: not checked, as for PostgreSQL).
    let freeSpace: @Sendable () -> UInt64?
    /// An upload is refused STORAGE_FULL when it would leave less than this free.
    let keepFree: UInt64
    let clock: @Sendable () -> UInt64
    /// A blob became complete with forwards: these relays have a blob waiting for them.
    let onForwardsWaiting: @Sendable (Set<String>) -> Void
    let logger: Logger

    init(
        store: any BlobStore, queue: RelayConfiguration.Queue, freeSpace: @escaping @Sendable () -> UInt64?,
        clock: @escaping @Sendable () -> UInt64, logger: Logger, onForwardsWaiting: @escaping @Sendable (Set<String>) -> Void = { _ in }
    ) {
        self.store = store
        self.ledger = BlobLedger(limit: UInt64(max(0, queue.maximumBlobBytesPerDevice)))
        self.maximumStoreBytes = UInt64(max(0, queue.maximumBlobStoreBytes))
        self.freeSpace = freeSpace
        self.keepFree = 2 * UInt64(max(0, queue.reserveBytes))
        self.clock = clock
        self.onForwardsWaiting = onForwardsWaiting
        self.logger = logger
    }

    /// One connection's blob work: a serial queue, and the uploads it declared (touched only
    /// on that queue).
    final class BlobLane: @unchecked Sendable {
        struct Upload {
            let size: UInt64
            var committed: UInt64
            let destinations: Set<String>
        }

        let queue = DispatchQueue(label: "valise.relay.blobs")
        var uploads: [BlobID: Upload] = [:]
    }

    /// BlobUpload: charges the device, checks the disk, declares the blob (or finds it held).
    func upload(_ request: RelayRequestProcessor.BlobUploadRequest, requestID: UInt64, device: AgreementPublicKey, lane: BlobLane) throws -> WireRelayMessage {
        let now = clock()
        let expiresAt = now + request.ttl.seconds
        let charge = ledger.charge(device, id: request.id, size: request.size, expiresAt: expiresAt)
        guard charge != .overQuota else {
            return Self.refusal(requestID, .blobQuota, "blob-quota", "this device's attachments held at the relay would pass its quota (queue.maxBlobBytesPerDevice); try again once recipients have fetched them")
        }
        let undo = { if charge == .charged { self.ledger.uncharge(device, id: request.id) } }
        if let free = freeSpace(), free < keepFree || free - keepFree < request.size {
            undo()
            return Self.refusal(requestID, .storageFull, "storage-full", "the relay's disk has no room for this attachment; try again later")
        }
        let declaration = BlobDeclaration(id: request.id, size: request.size, expiresAt: expiresAt, fetches: request.fetches, forwards: request.forwards)
        let record: BlobRecord
        do throws(StoreError) {
            record = try store.beginBlob(declaration, maximumTotalBytes: maximumStoreBytes, now: now)
        } catch {
            undo()
            switch error.kind {
            case .limitReached:
                return Self.refusal(requestID, .blobQuota, "blob-quota", "the relay's attachment storage is full (queue.maxBlobStoreBytes); try again later")
            case .storageFull:
                return Self.refusal(requestID, .storageFull, "storage-full", "the relay's storage is full; try again later")
            case .failure:
                // The store's one refusal of a well-formed declaration: the id held with
                // another size (its message says, and names no uploader).
                logger.debug("refused a blob declaration", metadata: ["error": "\(error.message)"])
                return Self.refusal(requestID, .idInUse, "id-in-use", "a blob with this id is held with another size")
            default:
                throw error
            }
        }
        ledger.expires(request.id, at: record.expiresAt)
        if record.complete {
            lane.uploads[request.id] = nil
            ledger.completed(request.id)
        } else {
            lane.uploads[request.id] = BlobLane.Upload(size: record.size, committed: record.committed, destinations: Set(request.forwards.keys))
        }
        return RelayRequestProcessor.blobState(requestID, record)
    }

    /// BlobChunk: appends the bytes durably; at the last byte the store checks the hash.
    func chunk(_ id: BlobID, offset: UInt64, bytes: [UInt8], requestID: UInt64, lane: BlobLane) throws -> WireRelayMessage {
        guard var upload = lane.uploads[id] else {
            return RelayRequestProcessor.error(requestID, .badRequest("declare the blob with BlobUpload on this connection before sending its bytes"))
        }
        guard offset <= upload.size, UInt64(bytes.count) <= upload.size - offset else {
            return RelayRequestProcessor.error(requestID, .badRequest("the chunk goes past the blob's declared size of \(upload.size) bytes"))
        }
        guard offset <= upload.committed else {
            return RelayRequestProcessor.error(requestID, .badRequest("the relay holds \(upload.committed) bytes of this blob: send from there"))
        }
        let record: BlobRecord
        do throws(StoreError) {
            record = try store.appendBlob(id: id, offset: offset, bytes: bytes, now: clock())
        } catch {
            switch error.kind {
            case .corrupt:
                lane.uploads[id] = nil
                ledger.release(id)
                return Self.refusal(requestID, .blobMismatch, "blob-mismatch", "the blob's bytes do not hash to its id: the relay deleted them")
            case .storageFull:
                return Self.refusal(requestID, .storageFull, "storage-full", "the relay's storage is full; try again later")
            case .failure:
                lane.uploads[id] = nil
                return RelayRequestProcessor.noSuchBlob(requestID, "the relay no longer holds this upload (it expired): send BlobUpload again")
            default:
                throw error
            }
        }
        if record.complete {
            lane.uploads[id] = nil
            ledger.completed(id)
            if !upload.destinations.isEmpty { onForwardsWaiting(upload.destinations) }
        } else {
            upload.committed = record.committed
            lane.uploads[id] = upload
        }
        return RelayRequestProcessor.blobState(requestID, record)
    }

    /// BlobFetch: bytes of a complete blob.
    func fetch(_ id: BlobID, offset: UInt64, length: Int, requestID: UInt64) throws -> WireRelayMessage {
        let now = clock()
        guard let record = try store.blob(id: id, now: now) else {
            return RelayRequestProcessor.noSuchBlob(requestID, "this relay holds no complete blob with this id (not arrived yet, fetched by every recipient, or expired)")
        }
        guard offset < record.size else {
            return RelayRequestProcessor.error(requestID, .badRequest("the offset is past the blob's \(record.size) bytes"))
        }
        guard let bytes = try store.readBlob(id: id, offset: offset, length: length, now: now) else {
            return RelayRequestProcessor.noSuchBlob(requestID, "this relay no longer holds this blob")
        }
        return RelayRequestProcessor.blobData(requestID, id: id, offset: offset, bytes: bytes, size: record.size)
    }

    /// BlobFetched: one declared fetch done; the last deletes the blob.
    func fetched(_ id: BlobID) {
        do {
            if try store.blobFetched(id: id, now: clock()) { ledger.release(id) }
        } catch {
            logger.error("could not count a blob's fetch", metadata: ["error": "\(error.message)"])
        }
    }

    /// The expiry sweep's part: expired blobs go, and the ledger forgets them and the blobs
    /// deleted after their last forward.
    func expire() {
        let now = clock()
        do {
            let expired = try store.expireBlobs(now: now)
            if expired > 0 { logger.info("expired blobs", metadata: ["blobs": "\(expired)"]) }
        } catch {
            logger.error("could not expire blobs", metadata: ["error": "\(error.message)"])
        }
        ledger.sweep(now: now) { id in (try? store.blob(id: id, now: now)) != nil }
    }

    static func refusal(_ requestID: UInt64, _ code: RelayError.ProtocolCode, _ name: String, _ message: String) -> WireRelayMessage {
        RelayRequestProcessor.error(requestID, RelayError(code, code: name, message: message))
    }
}
