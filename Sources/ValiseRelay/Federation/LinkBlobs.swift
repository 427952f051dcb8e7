import ValiseStore

/// What relay links need of the relay's blob store (docs/PROTOCOL.md, "Blobs over links"):
/// the store the origin forwards from and the responder commits to, and the responder's
/// limits, as for a device's upload (`RelayBlobs`): `queue.maxBlobBytes` for one blob,
/// `queue.maxBlobStoreBytes` for all it holds, and twice `queue.reserveBytes` left free.
struct LinkBlobs: Sendable {
    let store: any BlobStore
    let maximumBlobBytes: UInt64
    let maximumTotalBytes: UInt64
    /// Bytes free on the blobs' disk (nil: not checked, as for PostgreSQL).
    let freeSpace: @Sendable () -> UInt64?
    let keepFree: UInt64

    init(store: any BlobStore, maximumBlobBytes: UInt64, maximumTotalBytes: UInt64,
         freeSpace: @escaping @Sendable () -> UInt64? = { nil }, keepFree: UInt64 = 0) {
        self.store = store
        self.maximumBlobBytes = maximumBlobBytes
        self.maximumTotalBytes = maximumTotalBytes
        self.freeSpace = freeSpace
        self.keepFree = keepFree
    }

    init(store: any BlobStore, queue: RelayConfiguration.Queue, freeSpace: @escaping @Sendable () -> UInt64?) {
        self.init(store: store, maximumBlobBytes: UInt64(max(0, queue.maximumBlobBytes)),
                  maximumTotalBytes: UInt64(max(0, queue.maximumBlobStoreBytes)), freeSpace: freeSpace,
                  keepFree: 2 * UInt64(max(0, queue.reserveBytes)))
    }

    /// Whether a new blob of `size` bytes leaves the disk its reserve.
    func hasRoom(for size: UInt64) -> Bool {
        guard let free = freeSpace() else { return true }
        return free >= keepFree && free - keepFree >= size
    }
}
