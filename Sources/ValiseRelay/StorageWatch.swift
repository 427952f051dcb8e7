public import Logging
import NIOConcurrencyHelpers

/// Whether the store last refused an envelope for want of space. The operator is told once
/// when it starts refusing and once when it accepts again, not once per refusal: a full disk
/// must not fill the log too (or go unnoticed, as it once did).
public final class StorageWatch: Sendable {
    private let full = NIOLockedValueBox(false)
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public var isFull: Bool { full.withLockedValue { $0 } }

    /// The store refused an envelope: STORAGE_FULL.
    public func refused() {
        guard full.withLockedValue({ state in defer { state = true }; return !state }) else { return }
        logger.warning("storage full: new envelopes are refused (STORAGE_FULL) until there is room; deliveries and acknowledgements go on")
    }

    /// The store accepted an envelope.
    public func accepted() {
        guard full.withLockedValue({ state in defer { state = false }; return state }) else { return }
        logger.warning("storage has room again: new envelopes are accepted")
    }
}
