import Logging
import NIOCore
import NIOPosix
import ValiseStore
import ValiseWire

/// Blobs a linked relay forwards to this one (docs/PROTOCOL.md, "Blobs over links"): each
/// offer and part goes to the blob store off the event loop (it blocks on disk), and is
/// answered only after the store's durable commit, as a Forward is.
extension IncomingLinkHandler {
    func blobOffer(requestID: UInt64, id: BlobID, size: UInt64, lifetime: UInt64, fetches: UInt32, context: ChannelHandlerContext) {
        guard let blobs = shared.federation?.dependencies.blobs else {
            return reply(LinkRequestProcessor.error(requestID, .badRequest, "this relay keeps no blobs"), context: context)
        }
        let clock = shared.clock
        store(requestID: requestID, id: id, offer: true, bytes: 0, context: context) { () throws(StoreError) -> BlobRecord in
            let now = clock()
            // A blob already held takes no more room; a new one must leave the disk its reserve.
            if try blobs.store.blob(id: id, now: now) == nil, !blobs.hasRoom(for: size) {
                throw StoreError(.storageFull, "the disk has no room for this blob")
            }
            // The blob's recipients are homed here: fetches only, no forwards onward.
            let declaration = BlobDeclaration(id: id, size: size, expiresAt: now + lifetime, fetches: fetches)
            return try blobs.store.beginBlob(declaration, maximumTotalBytes: blobs.maximumTotalBytes, now: now)
        }
    }

    func blobPart(requestID: UInt64, id: BlobID, offset: UInt64, bytes: [UInt8], context: ChannelHandlerContext) {
        guard let blobs = shared.federation?.dependencies.blobs else {
            return reply(LinkRequestProcessor.error(requestID, .badRequest, "this relay keeps no blobs"), context: context)
        }
        let clock = shared.clock
        // The part's bytes count toward the link's pending bytes until they are committed.
        store(requestID: requestID, id: id, offer: false, bytes: bytes.count, context: context) { () throws(StoreError) -> BlobRecord in
            try blobs.store.appendBlob(id: id, offset: offset, bytes: bytes, now: clock())
        }
    }

    private func store(
        requestID: UInt64, id: BlobID, offer: Bool, bytes: Int, context: ChannelHandlerContext,
        _ work: @escaping @Sendable () throws(StoreError) -> BlobRecord
    ) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pending += 1
        pendingBytes += bytes
        shared.threadPool.runIfActive(eventLoop: context.eventLoop) { () -> Result<BlobRecord, StoreError> in
            do throws(StoreError) {
                return .success(try work())
            } catch {
                return .failure(error)
            }
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            handler.pending -= 1
            handler.pendingBytes -= bytes
            let stored: Result<BlobRecord, StoreError>
            switch result {
            case .success(let outcome): stored = outcome
            case .failure: stored = .failure(StoreError(.unavailable, "the relay is shutting down"))
            }
            if case .failure(let error) = stored, error.kind == .unavailable || error.kind == .storageFull {
                handler.logger.error("could not store a forwarded blob", metadata: ["error": "\(error.message)", "blob.id": "\(id)"])
            }
            if let answer = handler.processor?.blobStored(requestID, id: id, offer: offer, stored) {
                handler.reply(answer, context: context)
            }
            handler.resume(context)
        }
    }
}
