import NIOConcurrencyHelpers
import ValiseStore

/// A connection that delivers a mailbox, given each envelope accepted for it.
protocol DeliveryTarget: AnyObject, Sendable {
    /// Safe from any thread: on its event loop, the connection sends the envelope at once if
    /// it has already sent everything else the store holds for it (and has room), or else
    /// looks in the store, so that nothing overtakes a waiting envelope of higher precedence.
    func offer(_ envelope: StoredEnvelope)
    /// Safe from any thread: the connection looks in the store again (envelopes became
    /// deliverable without being accepted: an operator released them).
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

    /// An envelope was committed: its mailbox's connections get it from memory instead of
    /// reading it back from the store.
    func offer(_ envelope: StoredEnvelope) {
        let waiting = targets.withLockedValue { $0[envelope.mailbox].map { Array($0.values) } ?? [] }
        for target in waiting { target.offer(envelope) }
    }

    /// Envelopes of `mailbox` became deliverable again: its connections look in the store.
    func wake(_ mailbox: Mailbox) {
        let waiting = targets.withLockedValue { $0[mailbox].map { Array($0.values) } ?? [] }
        for target in waiting { target.wake() }
    }

    /// Anything may have changed (another node of a shared store committed, and its
    /// announcement was lost or named too many mailboxes): every connection looks again.
    func wakeAll() {
        let waiting = targets.withLockedValue { $0.values.flatMap(\.values) }
        for target in waiting { target.wake() }
    }
}
