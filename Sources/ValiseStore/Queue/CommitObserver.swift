/// Told, on the writer thread, of each group commit that wrote something: how many requests
/// (envelopes, acknowledgement lists, forwarding answers, reroutes) it carried and how long
/// the store's commit took, fsync included. The relay turns this into metrics; the store
/// itself stays free of any metrics library.
public protocol CommitObserver: Sendable {
    func committed(requests: Int, seconds: Double)
}
