import ValiseStore
import ValiseWire

/// The blob lane of a link session (docs/PROTOCOL.md, "Blobs over links"): the lane's
/// decisions are `LinkBlobLane`'s; the session adds the lane rule and the request ids.
extension LinkSession {
    /// The lane rule: blobs go only on an established link with no envelope waiting to be
    /// sent (the last load found the forwarding queue empty beyond what is in flight, and
    /// nothing was committed since). A FLASH envelope that arrives meanwhile goes straight
    /// out (`offer`), behind at most the one part already on the wire.
    var blobsMayGo: Bool { established && !closed && caughtUp && !loading }

    mutating func pumpBlobs(now: UInt64) -> [Action] {
        translate(blobs.pump(mayGo: blobsMayGo, now: now), now: now)
    }

    /// Blob forwards loaded for a `.loadBlobs` action (nil: the load failed).
    mutating func blobsLoaded(_ forwards: [BlobForward]?, limit: Int, now: UInt64) -> [Action] {
        guard let forwards else {
            blobs.loadFailed(now: now)
            return []
        }
        blobs.loaded(forwards, limit: limit, now: now)
        return pumpBlobs(now: now)
    }

    /// Bytes read for a `.readBlob` action (nil: the blob is no longer held here).
    mutating func blobRead(_ id: BlobID, offset: UInt64, bytes: [UInt8]?, now: UInt64) -> [Action] {
        translate(blobs.read(id, offset: offset, bytes: bytes, now: now), now: now) + pumpBlobs(now: now)
    }

    /// The store recorded the forward of `id` as done (or failed to).
    mutating func blobCompleted(_ id: BlobID, now: UInt64) -> [Action] {
        blobs.completed(id)
        return pumpBlobs(now: now)
    }

    /// A blob completed here with a forward to this peer.
    mutating func wakeBlobs(now: UInt64) -> [Action] {
        blobs.wake()
        return pumpBlobs(now: now)
    }

    mutating func blobAnswered(_ id: BlobID, _ reply: LinkLinkReply, now: UInt64) -> [Action] {
        let actions = translate(blobs.answered(id, reply, now: now), now: now)
        return closed ? actions : actions + pumpBlobs(now: now)
    }

    private mutating func translate(_ actions: [LinkBlobLane.Action], now: UInt64) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .send(let id, let body): out.append(request(body, .blob(id), now: now))
            case .load(let excluding, let limit): out.append(.loadBlobs(excluding: excluding, limit: limit))
            case .read(let id, let offset, let length): out.append(.readBlob(id, offset: offset, length: length))
            case .complete(let id, let refused): out.append(.completeBlob(id, refused: refused))
            case .warn(let message): out.append(.warn(message))
            case .close(let reason): out += close(reason)
            }
        }
        return out
    }
}
