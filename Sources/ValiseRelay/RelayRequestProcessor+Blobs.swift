import Foundation
import ValiseDirectory
import ValiseStore
import ValiseWire

/// The blob requests' bounds (docs/PROTOCOL.md, "Blobs"), checked before anything touches
/// the store: what reaches `RelayConnectionHandler` is a well-formed request of a device.
extension RelayRequestProcessor {
    /// Bytes in one BlobChunk or BlobData, at most.
    static let maximumBlobChunkBytes = 262_144
    /// Relays one upload may name, recipient devices per relay, and recipient devices in all.
    static let maximumBlobFetchEntries = 64
    static let maximumBlobFetchesPerRelay: UInt32 = 1000
    static let maximumBlobFetches: UInt32 = 1000

    /// A checked BlobUpload: the TTL class applied (the default, lowered to the maximum),
    /// the fetches at this relay, and the other relays' (by directory name).
    struct BlobUploadRequest: Sendable, Equatable {
        let id: BlobID
        let size: UInt64
        let ttl: TTLClass
        let fetches: UInt32
        let forwards: [String: UInt32]
    }

    func handleBlobUpload(_ upload: WireBlobUpload, id: UInt64, directory: RelayDirectory.Snapshot) -> Outcome {
        guard case .device = admission else { return .reply(Self.notAllowed(id)) }
        guard let blob = BlobID(bytes: Array(upload.blobID)) else { return .reply(Self.error(id, .badRequest("a blob id is 32 bytes"))) }
        guard upload.size >= 1 else { return .reply(Self.error(id, .badRequest("a blob is at least 1 byte"))) }
        guard upload.size <= settings.maximumBlobBytes else {
            let message = settings.maximumBlobBytes == 0
                ? "this relay takes no attachments"
                : "the attachment is larger than this relay's \(settings.maximumBlobBytes) bytes (queue.maxBlobBytes)"
            return .reply(Self.error(id, RelayError(.tooLarge, code: "too-large", message: message)))
        }
        guard let ttl = ttlClass(upload.ttl) else { return .reply(Self.error(id, .badRequest("unknown TTL class"))) }
        guard (1...Self.maximumBlobFetchEntries).contains(upload.fetches.count) else {
            return .reply(Self.error(id, .badRequest("a blob upload names 1 to \(Self.maximumBlobFetchEntries) relays that will fetch it")))
        }
        var local: UInt32 = 0
        var forwards: [String: UInt32] = [:]
        var seen: Set<String> = []
        var total: UInt32 = 0
        for entry in upload.fetches {
            guard (1...Self.maximumBlobFetchesPerRelay).contains(entry.count) else {
                return .reply(Self.error(id, .badRequest("a relay's fetch count is 1 to \(Self.maximumBlobFetchesPerRelay)")))
            }
            total += entry.count
            guard total <= Self.maximumBlobFetches else {
                return .reply(Self.error(id, .badRequest("a blob is fetched by at most \(Self.maximumBlobFetches) devices in all")))
            }
            // This relay by its name or by "": the same relay either way.
            let own = entry.relay.isEmpty || entry.relay == directory.relayName
            let name = own ? "" : entry.relay
            guard seen.insert(name).inserted else {
                return .reply(Self.error(id, .badRequest("a blob upload names each relay once")))
            }
            if own {
                local = entry.count
            } else {
                guard directory.state.relays[entry.relay] != nil else {
                    return .reply(Self.error(id, .badRequest("no relay of the directory is called \(entry.relay.prefix(64))")))
                }
                forwards[entry.relay] = entry.count
            }
        }
        return .blobUpload(requestID: id, BlobUploadRequest(id: blob, size: upload.size, ttl: min(ttl, settings.maximumTTL), fetches: local, forwards: forwards))
    }

    func handleBlobChunk(_ chunk: WireBlobChunk, id: UInt64) -> Outcome {
        guard case .device = admission else { return .reply(Self.notAllowed(id)) }
        guard let blob = BlobID(bytes: Array(chunk.blobID)) else { return .reply(Self.error(id, .badRequest("a blob id is 32 bytes"))) }
        guard (1...Self.maximumBlobChunkBytes).contains(chunk.data.count) else {
            return .reply(Self.error(id, .badRequest("a blob chunk carries 1 to \(Self.maximumBlobChunkBytes) bytes")))
        }
        return .blobChunk(requestID: id, blob, offset: chunk.offset, bytes: Array(chunk.data))
    }

    func handleBlobFetch(_ fetch: WireBlobFetch, id: UInt64) -> Outcome {
        guard case .device = admission else { return .reply(Self.notAllowed(id)) }
        guard let blob = BlobID(bytes: Array(fetch.blobID)) else { return .reply(Self.error(id, .badRequest("a blob id is 32 bytes"))) }
        guard fetch.length <= Self.maximumBlobChunkBytes else {
            return .reply(Self.error(id, .badRequest("a blob fetch asks for at most \(Self.maximumBlobChunkBytes) bytes")))
        }
        return .blobFetch(requestID: id, blob, offset: fetch.offset, length: fetch.length == 0 ? Self.maximumBlobChunkBytes : Int(fetch.length))
    }

    /// BlobFetched has no answer: anything but a device's well-formed one is ignored.
    func handleBlobFetched(_ fetched: WireBlobFetched) -> Outcome {
        guard case .device = admission, let blob = BlobID(bytes: Array(fetched.blobID)) else { return .acknowledge([]) }
        return .blobFetched(blob)
    }

    static func blobState(_ requestID: UInt64, _ record: BlobRecord) -> WireRelayMessage {
        var state = WireBlobState()
        state.blobID = Data(record.id.bytes)
        state.size = record.size
        state.committed = record.committed
        state.complete = record.complete
        state.expiresAt = record.expiresAt
        return message(requestID, .blobState(state))
    }

    static func blobData(_ requestID: UInt64, id: BlobID, offset: UInt64, bytes: [UInt8], size: UInt64) -> WireRelayMessage {
        var data = WireBlobData()
        data.blobID = Data(id.bytes)
        data.offset = offset
        data.data = Data(bytes)
        data.size = size
        return message(requestID, .blobData(data))
    }

    static func noSuchBlob(_ requestID: UInt64, _ message: String) -> WireRelayMessage {
        error(requestID, RelayError(.noSuchBlob, code: "no-such-blob", message: message))
    }
}
