extension Federation {
    /// Blobs complete at this relay wait to be sent to these relays (docs/PROTOCOL.md, "Blobs
    /// over links"): called from a connection's blob lane when an upload completes with
    /// forwards: the links to those relays look for blob work (`LinkBlobLane`).
    func blobsWaiting(for destinations: Set<String>) {
        wakeBlobs(destinations: destinations)
    }
}
