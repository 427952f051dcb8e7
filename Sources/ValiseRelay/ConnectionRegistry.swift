import NIOConcurrencyHelpers
public import ValiseCrypto

/// Something the relay can end from outside its event loop: a live connection.
public protocol DroppableConnection: AnyObject, Sendable {
    /// Sends the client `reason` and closes; safe to call from any thread.
    func drop(_ reason: RelayError)
}

/// What an admitted connection is, without saying whose: the figures `valised status` and
/// the periodic log line give.
public enum ConnectionRole: String, CaseIterable, Sendable {
    /// A member's device (current, revoked or homed elsewhere).
    case device
    /// An administrator's transport key.
    case admin
    /// Another relay's link to this one.
    case relay
}

/// Admitted connections by transport key, so that a revocation can reach them, and all of
/// them, so that shutdown can; how many are open in each role, and how many were admitted
/// since the last periodic count.
public final class ConnectionRegistry: Sendable {
    private struct State {
        var connections: [AgreementPublicKey: [ObjectIdentifier: (connection: any DroppableConnection, role: ConnectionRole)]] = [:]
        var open: [ConnectionRole: Int] = [:]
        var admitted: [ConnectionRole: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public func register(_ connection: any DroppableConnection, key: AgreementPublicKey, role: ConnectionRole) {
        state.withLockedValue { state in
            guard state.connections[key, default: [:]].updateValue((connection, role), forKey: ObjectIdentifier(connection)) == nil else { return }
            state.open[role, default: 0] += 1
            state.admitted[role, default: 0] += 1
        }
    }

    public func unregister(_ connection: any DroppableConnection, key: AgreementPublicKey) {
        state.withLockedValue { state in
            guard let removed = state.connections[key]?.removeValue(forKey: ObjectIdentifier(connection)) else { return }
            state.open[removed.role, default: 0] -= 1
            if state.connections[key]?.isEmpty == true { state.connections[key] = nil }
        }
    }

    /// Drops every connection of these keys.
    public func drop(keys: [AgreementPublicKey], reason: RelayError) {
        let targets = state.withLockedValue { state in keys.flatMap { state.connections[$0].map { $0.values.map(\.connection) } ?? [] } }
        for connection in targets { connection.drop(reason) }
    }

    public func dropAll(reason: RelayError) {
        let targets = state.withLockedValue { state in state.connections.values.flatMap { $0.values.map(\.connection) } }
        for connection in targets { connection.drop(reason) }
    }

    public var count: Int { state.withLockedValue { $0.open.values.reduce(0, +) } }

    /// Open connections in each role (zero for none).
    public var openByRole: [ConnectionRole: Int] {
        state.withLockedValue { state in Dictionary(uniqueKeysWithValues: ConnectionRole.allCases.map { ($0, state.open[$0] ?? 0) }) }
    }

    /// Connections admitted in each role since the last call (or the start), and starts
    /// counting again.
    public func takeAdmitted() -> [ConnectionRole: Int] {
        state.withLockedValue { state in
            defer { state.admitted = [:] }
            return Dictionary(uniqueKeysWithValues: ConnectionRole.allCases.map { ($0, state.admitted[$0] ?? 0) })
        }
    }
}
