import Dispatch
import NIOCore
import ValiseStore
import ValiseWire

extension RelayConnectionHandler {
    /// Runs a blob request on this connection's lane (created at its first), counted as a
    /// pending request with `bytes` (a chunk's, or what a fetch asks for) until answered:
    /// the pending limits pace a connection's uploads and downloads as they pace its sends.
    func blobRequest(
        _ requestID: UInt64, bytes: Int, context: ChannelHandlerContext,
        _ work: @escaping @Sendable (RelayBlobs, RelayBlobs.BlobLane) throws -> WireRelayMessage
    ) {
        guard let blobs = shared.blobs else {
            let refusal = RelayRequestProcessor.noSuchBlob(requestID, "this relay takes no attachments")
            perform(state.send(RelayRequestProcessor.encode(refusal)), context: context)
            return
        }
        let lane = blobLane()
        let promise = context.eventLoop.makePromise(of: WireRelayMessage.self)
        lane.queue.async {
            promise.completeWith(Result { try work(blobs, lane) })
        }
        answer(requestID: requestID, context: context, failure: "could not store or read an attachment", bytes: bytes, promise.futureResult)
    }

    func blobLane() -> RelayBlobs.BlobLane {
        if let lane = blobs { return lane }
        let lane = RelayBlobs.BlobLane()
        blobs = lane
        return lane
    }

    func handleBlob(_ outcome: RelayRequestProcessor.Outcome, context: ChannelHandlerContext) {
        switch outcome {
        case .blobUpload(let requestID, let request):
            guard let device = admittedKey else { return }
            blobRequest(requestID, bytes: 0, context: context) { blobs, lane in
                try blobs.upload(request, requestID: requestID, device: device, lane: lane)
            }
        case .blobChunk(let requestID, let id, let offset, let bytes):
            blobRequest(requestID, bytes: bytes.count, context: context) { blobs, lane in
                try blobs.chunk(id, offset: offset, bytes: bytes, requestID: requestID, lane: lane)
            }
        case .blobFetch(let requestID, let id, let offset, let length):
            blobRequest(requestID, bytes: length, context: context) { blobs, _ in
                try blobs.fetch(id, offset: offset, length: length, requestID: requestID)
            }
        case .blobFetched(let id):
            // No answer; after this connection's earlier blob requests, like them.
            guard let blobs = shared.blobs else { return }
            blobLane().queue.async { blobs.fetched(id) }
        default:
            break
        }
    }
}
