import NIOConcurrencyHelpers
public import ValiseCrypto

/// Something the relay can end from outside its event loop: a live connection.
public protocol DroppableConnection: AnyObject, Sendable {
    /// Sends the client `reason` and closes; safe to call from any thread.
    func drop(_ reason: RelayError)
}

/// Admitted connections by transport key, so that a revocation can reach them, and all of
/// them, so that shutdown can.
public final class ConnectionRegistry: Sendable {
    private let connections = NIOLockedValueBox<[AgreementPublicKey: [ObjectIdentifier: any DroppableConnection]]>([:])

    public init() {}

    public func register(_ connection: any DroppableConnection, key: AgreementPublicKey) {
        connections.withLockedValue { $0[key, default: [:]][ObjectIdentifier(connection)] = connection }
    }

    public func unregister(_ connection: any DroppableConnection, key: AgreementPublicKey) {
        connections.withLockedValue { all in
            all[key]?[ObjectIdentifier(connection)] = nil
            if all[key]?.isEmpty == true { all[key] = nil }
        }
    }

    /// Drops every connection of these keys.
    public func drop(keys: [AgreementPublicKey], reason: RelayError) {
        let targets = connections.withLockedValue { all in keys.flatMap { all[$0].map { Array($0.values) } ?? [] } }
        for connection in targets { connection.drop(reason) }
    }

    public func dropAll(reason: RelayError) {
        let targets = connections.withLockedValue { all in all.values.flatMap { $0.values } }
        for connection in targets { connection.drop(reason) }
    }

    public var count: Int { connections.withLockedValue { $0.values.reduce(0) { $0 + $1.count } } }

    /// How many connections each admitted key has open (metrics count them by role).
    var openByKey: [AgreementPublicKey: Int] { connections.withLockedValue { $0.mapValues(\.count) } }
}
