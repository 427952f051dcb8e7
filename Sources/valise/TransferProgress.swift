import Foundation
import ValiseClient

/// A progress line on stderr for attachments (bytes, rate, time left): only at a terminal,
/// only for transfers over 1 MiB, never with --json, redrawn at most four times a second.
final class TransferProgress {
    static let threshold: UInt64 = 1 << 20
    private static let interval: UInt64 = 250_000_000

    private var started: UInt64 = 0
    private var startedAt: UInt64 = 0
    private var lastDrawn: UInt64 = 0
    private var total: UInt64 = 0
    private var drawing = false

    /// The sink for MessageSync, or nil when nothing should be shown.
    static func sink(json: Bool) -> ((MessageSync.TransferDirection, UInt64, UInt64) -> Void)? {
        guard !json, isatty(STDERR_FILENO) == 1 else { return nil }
        let progress = TransferProgress()
        return { direction, done, total in progress.update(direction == .upload ? "Uploading" : "Downloading", done: done, total: total) }
    }

    /// The same for encrypting files into the spool before sending.
    static func sealingSink(json: Bool) -> ((String, UInt64, UInt64) -> Void)? {
        guard !json, isatty(STDERR_FILENO) == 1 else { return nil }
        let progress = TransferProgress()
        return { _, done, total in progress.update("Encrypting", done: done, total: total) }
    }

    func update(_ verb: String, done: UInt64, total: UInt64) {
        guard total > Self.threshold else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        if total != self.total || done < started {
            (self.total, started, startedAt, lastDrawn) = (total, done, now, 0)
        }
        let finished = done >= total
        guard finished || now &- lastDrawn >= Self.interval else { return }
        lastDrawn = now
        let seconds = Double(now &- startedAt) / 1e9
        let rate = seconds > 0 ? Double(done - started) / seconds : 0
        var line = "\(verb) \(ByteCount.describe(done)) of \(ByteCount.describe(total))"
        if rate > 0 {
            line += ", \(ByteCount.describe(UInt64(rate)))/s"
            if !finished { line += ", \(Self.duration(Double(total - done) / rate)) left" }
        }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line)\(finished ? "\n" : "")".utf8))
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        return whole >= 60 ? "\(whole / 60) min \(whole % 60) s" : "\(whole) s"
    }
}
