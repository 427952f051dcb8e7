import NIOConcurrencyHelpers
import ValiseStore

/// A connection that delivers a mailbox, woken when an envelope for it is accepted.
protocol DeliveryTarget: AnyObject, Sendable {
    /// Safe from any thread: the connection looks for new envelopes on its event loop.
    func wake()
}

/// Connections that fetch each mailbox, so that an accepted envelope reaches an online
/// recipient at once.
final class MailboxRegistry: Sendable {
    private let targets = NIOLockedValueBox<[Mailbox: [ObjectIdentifier: any DeliveryTarget]]>([:])

    func register(_ target: any DeliveryTarget, for mailbox: Mailbox) {
        targets.withLockedValue { $0[mailbox, default: [:]][ObjectIdentifier(target)] = target }
    }

    func unregister(_ target: any DeliveryTarget, for mailbox: Mailbox) {
        targets.withLockedValue { all in
            all[mailbox]?[ObjectIdentifier(target)] = nil
            if all[mailbox]?.isEmpty == true { all[mailbox] = nil }
        }
    }

    func wake(_ mailbox: Mailbox) {
        let waiting = targets.withLockedValue { $0[mailbox].map { Array($0.values) } ?? [] }
        for target in waiting { target.wake() }
    }
}
