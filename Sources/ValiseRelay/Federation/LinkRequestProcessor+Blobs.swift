import Foundation
import ValiseStore
import ValiseWire

/// Blobs over a link, as the destination judges them (docs/PROTOCOL.md, "Blobs over
/// links"): an offer's bounds, a part's place, and the store's answer as a BlobResult.
extension LinkRequestProcessor {
    /// Fetches one offer may declare.
    static let maximumBlobFetches: UInt32 = 1000
    /// Blobs a link may have offered and not finished (the origin sends one at a time).
    static let maximumOfferedBlobs = 64

    struct OfferedBlob: Equatable {
        let size: UInt64
        var committed: UInt64
    }

    mutating func blobOffer(_ offer: LinkBlobOffer, requestID: UInt64) -> Outcome {
        guard settings.maximumBlobBytes > 0 else { return .reply(Self.error(requestID, .badRequest, "this relay keeps no blobs")) }
        guard let id = BlobID(bytes: Array(offer.blobID)), (1...settings.maximumBlobBytes).contains(offer.size), offer.remainingSeconds >= 1,
              (1...Self.maximumBlobFetches).contains(offer.fetches) else {
            return .reply(Self.blobResult(requestID, offer.blobID, .permanent, .badBlob,
                "the offer is out of bounds (id of 32 bytes, size 1 to \(settings.maximumBlobBytes), lifetime, fetches 1 to \(Self.maximumBlobFetches))"))
        }
        return .blobOffer(requestID: requestID, id: id, size: offer.size,
                          lifetime: min(offer.remainingSeconds, settings.maximumTTL.seconds), fetches: offer.fetches)
    }

    mutating func blobPart(_ part: LinkBlobPart, requestID: UInt64) -> Outcome {
        guard settings.maximumBlobBytes > 0 else { return .reply(Self.error(requestID, .badRequest, "this relay keeps no blobs")) }
        guard let id = BlobID(bytes: Array(part.blobID)), (1...LinkBlobLane.partBytes).contains(part.data.count) else {
            return .reply(Self.blobResult(requestID, part.blobID, .permanent, .badBlob, "a part names a 32-byte id and carries 1 to \(LinkBlobLane.partBytes) bytes"))
        }
        guard let offered = offeredBlobs[id] else {
            return .reply(Self.blobResult(requestID, part.blobID, .temporary, .notOffered, "offer the blob first"))
        }
        guard part.offset <= offered.committed, part.offset + UInt64(part.data.count) <= offered.size else {
            offeredBlobs[id] = nil
            return .reply(Self.blobResult(requestID, part.blobID, .permanent, .badBlob,
                "the part leaves a gap or runs past the blob's size (this relay holds \(offered.committed) of \(offered.size) bytes)"))
        }
        return .blobPart(requestID: requestID, id: id, offset: part.offset, bytes: Array(part.data))
    }

    /// The store's answer to an offer (`beginBlob`) or a part (`appendBlob`), as the reply.
    mutating func blobStored(_ requestID: UInt64, id: BlobID, offer: Bool, _ result: Result<BlobRecord, StoreError>) -> LinkLinkReply {
        let wireID = Data(id.bytes)
        switch result {
        case .success(let record) where record.complete:
            offeredBlobs[id] = nil
            return Self.blobResult(requestID, wireID, .complete, .unspecified, "")
        case .success(let record):
            if offeredBlobs[id] == nil, offeredBlobs.count >= Self.maximumOfferedBlobs, let any = offeredBlobs.keys.first {
                offeredBlobs[any] = nil
            }
            offeredBlobs[id] = OfferedBlob(size: record.size, committed: record.committed)
            var reply = Self.blobResult(requestID, wireID, .continue, .unspecified, "")
            reply.blobResult.committed = record.committed
            return reply
        case .failure(let error):
            offeredBlobs[id] = nil
            switch error.kind {
            case .corrupt:
                return Self.blobResult(requestID, wireID, .permanent, .blobMismatch, "the bytes do not hash to the blob's id; they were deleted")
            case .limitReached, .storageFull:
                return Self.blobResult(requestID, wireID, .temporary, .storageFull, "this relay's blob storage is full")
            case .failure where offer:
                // An offer: the id is held here with another size.
                return Self.blobResult(requestID, wireID, .permanent, .badBlob, "this relay holds this blob id with another size")
            case .failure:
                // A part the store does not take at a place this processor agreed to: the
                // blob expired or was deleted in between.
                return Self.blobResult(requestID, wireID, .temporary, .notOffered, "this relay no longer holds the blob: offer it again")
            case .unavailable:
                return Self.blobResult(requestID, wireID, .temporary, .storageFull, "this relay cannot reach its store")
            }
        }
    }

    static func blobResult(
        _ requestID: UInt64, _ id: Data, _ outcome: LinkBlobResult.Outcome, _ reason: LinkBlobResult.Reason, _ message: String
    ) -> LinkLinkReply {
        var result = LinkBlobResult()
        result.blobID = id
        result.outcome = outcome
        result.reason = reason
        result.message = message
        return reply(requestID, .blobResult(result))
    }
}
