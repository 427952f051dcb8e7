import NIOCore

/// Keeping to the relay's rates: sends paced by `SendPacer` from what the Welcome said;
/// prekey fetches (whose rate the Welcome does not say) retried after RATE_LIMITED.
extension MessageSync {
    /// Retries of one Send answered RATE_LIMITED although paced, before the rest waits
    /// for the next sync.
    static let rateLimitedRetries = 3
    /// Waits before fetching a refused batch of bundles again, in seconds: a relay's
    /// default refills a batch of 100 members in 10 s; after the last, the batch's
    /// messages wait for the next sync, as before.
    static let prekeyFetchBackoff: [UInt64] = [1, 2, 4, 8, 16]

    /// A monotonic clock for pacing, in nanoseconds.
    static func uptime() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Waits until the pacer lets the next send go (at once without one).
    func paceNextSend() async throws(ClientError) {
        guard var pacer else { return }
        defer { self.pacer = pacer }
        // Bounded: each wait is at most one interval, and the tokens grow meanwhile.
        for _ in 0..<4 {
            let wait = pacer.delay(now: Self.uptime())
            guard wait > 0 else { break }
            try await Self.sleep(nanoseconds: wait)
        }
        pacer.take(now: Self.uptime())
    }

    /// Sleeps, as a ClientError when the task is cancelled.
    static func sleep(nanoseconds: UInt64) async throws(ClientError) {
        do {
            try await Task.sleep(nanoseconds: nanoseconds)
        } catch {
            throw .failure("cancelled", "sending was interrupted; what was not sent stays in the outbox")
        }
    }
}
