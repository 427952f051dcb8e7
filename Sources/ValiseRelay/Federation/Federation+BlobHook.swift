extension Federation {
    /// Blobs complete at this relay wait to be sent to these relays (docs/PROTOCOL.md, "Blobs
    /// over links"): called from a connection's blob lane when an upload completes with
    /// forwards. The links' blob lane wakes here once it exists; until then such a blob
    /// waits in the store (`BlobStore.nextBlobForwards`) until it expires.
    func blobsWaiting(for destinations: Set<String>) {}
}
