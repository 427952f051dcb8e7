import ValiseStore

/// What relay links need of the relay's blob store (docs/PROTOCOL.md, "Blobs over links"):
/// the store the origin forwards from and the responder commits to, and the responder's
/// limits (`queue.maxBlobBytes` for one blob, `queue.maxBlobStoreBytes` for all it holds).
struct LinkBlobs: Sendable {
    let store: any BlobStore
    let maximumBlobBytes: UInt64
    let maximumTotalBytes: UInt64
}
