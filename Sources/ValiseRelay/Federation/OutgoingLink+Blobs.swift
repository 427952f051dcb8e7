import Logging
import NIOCore
import NIOPosix
import ValiseStore

/// The blob lane's I/O on an outgoing link (docs/PROTOCOL.md, "Blobs over links"): loads
/// the blob forwards for the peer, reads parts, and records finished forwards, each off the
/// event loop (the store blocks), then hands the result back to the session.
extension OutgoingLink {
    func wakeBlobs() { withSession { $0.wakeBlobs(now: dependencies.clock()) } }

    func runBlobAction(_ action: LinkSession.Action) {
        switch action {
        case .loadBlobs(let excluding, let limit): loadBlobs(excluding: excluding, limit: limit)
        case .readBlob(let id, let offset, let length): readBlob(id, offset: offset, length: length)
        case .completeBlob(let id, let refused): completeBlob(id, refused: refused)
        default: break
        }
    }

    func loadBlobs(excluding: Set<BlobID>, limit: Int) {
        let (blobs, clock, destination) = (dependencies.blobs, dependencies.clock, name)
        dependencies.threadPool.runIfActive(eventLoop: loop) { () throws -> [BlobForward] in
            guard let blobs else { return [] }
            return try blobs.store.nextBlobForwards(destination: destination, excluding: excluding, limit: limit, now: clock())
        }.whenComplete { [loopBound = NIOLoopBound(self, eventLoop: loop)] result in
            let link = loopBound.value
            switch result {
            case .success(let forwards):
                link.withSession { $0.blobsLoaded(forwards, limit: limit, now: link.dependencies.clock()) }
            case .failure(let error):
                link.logger.error("could not read the blobs to forward", metadata: ["error": "\(error)"])
                link.withSession { $0.blobsLoaded(nil, limit: limit, now: link.dependencies.clock()) }
            }
        }
    }

    func readBlob(_ id: BlobID, offset: UInt64, length: Int) {
        let (blobs, clock) = (dependencies.blobs, dependencies.clock)
        dependencies.threadPool.runIfActive(eventLoop: loop) { () throws -> [UInt8]? in
            try blobs?.store.readBlob(id: id, offset: offset, length: length, now: clock())
        }.whenComplete { [loopBound = NIOLoopBound(self, eventLoop: loop)] result in
            let link = loopBound.value
            if case .failure(let error) = result {
                link.logger.error("could not read a blob to forward", metadata: ["error": "\(error)", "blob.id": "\(id)"])
            }
            let bytes = (try? result.get()) ?? nil
            link.withSession { $0.blobRead(id, offset: offset, bytes: bytes, now: link.dependencies.clock()) }
        }
    }

    /// The forward is over: custody passed, or the peer refused the blob for good.
    func completeBlob(_ id: BlobID, refused: String?) {
        if let refused {
            // The blob id's prefix only: never a member, an uploader or an address.
            logger.info("relay refused a blob for good: its forward ends", metadata: ["blob.id": "\(id)", "reason": "\(refused)"])
        }
        let (blobs, clock, destination) = (dependencies.blobs, dependencies.clock, name)
        dependencies.threadPool.runIfActive(eventLoop: loop) { () throws in
            try blobs?.store.completeBlobForward(id: id, destination: destination, now: clock())
        }.whenComplete { [loopBound = NIOLoopBound(self, eventLoop: loop)] result in
            let link = loopBound.value
            if case .failure(let error) = result {
                // The forward stays queued and goes again: the peer answers COMPLETE at once.
                link.logger.error("could not record a forwarded blob", metadata: ["error": "\(error)", "blob.id": "\(id)"])
            }
            link.withSession { $0.blobCompleted(id, now: link.dependencies.clock()) }
        }
    }
}
