public import ValiseDirectory
import ValiseWire

extension DeviceSession {
    /// The relay this device talks to: its home relay as the verified directory names it
    /// (or the relay named `name`, to reach another one on purpose), at its addresses in
    /// order; `address` replaces the addresses, never the key.
    public static func homeTarget(in state: DirectoryState, member: MemberName, name: String?, address: String?) throws(ClientError) -> DirectorySync.Target {
        if name != nil { return try DirectorySync.target(in: state, name: name, address: address) }
        guard let home = state.homeRelay(of: member) else {
            throw ClientError(kind: .notSetUp, code: "no-relay", message: "the directory lists no relay yet; an administrator adds one with valise admin add-relay")
        }
        return try DirectorySync.Target(relay: home, address: address)
    }

    /// The relays disagree about this device's home: one says another relay is home, and the
    /// directory verified from it still names the first. Temporary (a move still spreading),
    /// so it exits like an unreachable relay.
    static func relaysDisagree(_ relay: String, says home: String, member: MemberName) -> ClientError {
        ClientError(
            kind: .unreachable, code: "relays-disagree",
            message: "relay \(relay) says \(member)'s home relay is \(home), but the verified directory says \(relay): the relays disagree; try again later")
    }

    /// What one connection came to: the work done, or a move to follow.
    private enum Attempt<T: Sendable>: Sendable {
        case done(T)
        case notHome(PinnedOrganisation.Loaded, says: String)
    }

    /// Connects to this device's home relay (`homeTarget`) and runs `body` there. A relay
    /// that admits the device as homed elsewhere (or drops it because its home moved) is
    /// asked for the directory, which is verified and pinned; if that names another home,
    /// `onMove` is told in one line and the device connects there, within the same call;
    /// never on the relay's word alone. `body` gets the connection, the relay's welcome,
    /// the target reached and the directory pinned so far.
    public static func connectHome<T: Sendable>(
        home: ValiseHome, identity: DeviceIdentity, pinned: PinnedOrganisation.Loaded, relayName: String?, address: String?,
        now: @Sendable () -> UInt64, timeoutSeconds: Int64 = 10, onMove: (String) -> Void,
        _ body: (RelayClient, DirectorySync.Welcome, DirectorySync.Target, PinnedOrganisation.Loaded) async throws(ClientError) -> T
    ) async throws(ClientError) -> T {
        let member = identity.memberName
        var organisation = pinned
        var target = try homeTarget(in: organisation.state, member: member, name: relayName, address: address)
        var visited: Set<String> = []
        var droppedForMove = false
        // Home, old home, new home: a longer chain is relays that disagree.
        for _ in 0..<4 {
            visited.insert(target.relay.name)
            let attempt: Attempt<T>
            do {
                attempt = try await connect(home: home, identity: identity, target: target, timeoutSeconds: timeoutSeconds) { (client, welcome) throws(ClientError) -> Attempt<T> in
                    guard let says = welcome.notHomeSaysHome else { return .done(try await body(client, welcome, target, organisation)) }
                    return .notHome(try await refreshDirectory(client, home: home, pinned: organisation, now: now()), says: says)
                }
            } catch where error.code == "relay-\(WireErrorCode.notHome)" && !droppedForMove {
                // The relay learnt of a move while connected, and closed: connect again,
                // once, to hear the role it now gives.
                droppedForMove = true
                organisation = try PinnedOrganisation(home: home).load(now: now())
                continue
            }
            switch attempt {
            case .done(let result):
                return result
            case .notHome(let refreshed, let says):
                organisation = refreshed
                guard let next = refreshed.state.homeRelay(of: member), next.name != target.relay.name, !visited.contains(next.name) else {
                    throw relaysDisagree(target.relay.name, says: says, member: member)
                }
                // The override was for the relay asked for; the new home is reached where
                // the directory says.
                target = try DirectorySync.Target(relay: next, address: nil)
                onMove("\(member)'s home relay is \(next.name) (\(target.addressList)); connecting there")
            }
        }
        throw relaysDisagree(target.relay.name, says: target.relay.name, member: member)
    }
}
