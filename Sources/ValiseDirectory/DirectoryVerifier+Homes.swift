// The rules of entries about where members and relays are: enrollments, home relays
// (kinds 10 and 11), relay removal and relay address lists (kind 12).
extension DirectoryVerifier {
    /// Kinds 4 and 10: `member`, `request`, `key-reuse`.
    static func checkEnrollment(_ enrollment: Enrollment, state: DirectoryState, verified: Bool, fail: Failure) throws(DirectoryError) {
        let request = enrollment.request
        if let existing = state.members[request.member], existing.isActive {
            throw fail(.member, "\(request.member) is already an active member")
        }
        guard request.kind == .enrollment, verified || request.isValid else {
            throw fail(.request, "the enrollment request's signature does not verify")
        }
        try checkUnusedDeviceKeys(request.identityKey, request.transportKey, state: state, fail: fail)
    }

    /// Kind 3: the relay is listed, and no active member named it as their home (kind 10 or
    /// 11), so that such a member is moved, with their mail, before their home goes. Members
    /// without a named home follow the default relay instead: logs from before homes existed
    /// removed the first relay while members used it, and must still verify.
    static func checkRemoveRelay(_ name: String, state: DirectoryState, fail: Failure) throws(DirectoryError) {
        guard state.relays[name] != nil else { throw fail(.relay, "there is no relay named \(name)") }
        let homed = state.activeMembers.filter { $0.home == name }
        if let first = homed.first {
            let count = homed.count == 1 ? "1 member is" : "\(homed.count) members are"
            throw fail(.relay, "\(count) homed at relay \(name) (for example \(first.name)): move them first")
        }
    }

    /// Kind 11: an active member, to a listed relay that is not already their home.
    static func checkMove(_ name: MemberName, to home: String, state: DirectoryState, fail: Failure) throws(DirectoryError) {
        guard let member = state.members[name] else { throw fail(.member, "\(name) is not a member") }
        guard member.isActive else { throw fail(.member, "\(name) is revoked") }
        guard state.relays[home] != nil else { throw fail(.relay, "there is no relay named \(home)\(state.relayList)") }
        guard state.homeName(of: member) != home else {
            throw fail(.relay, "relay \(home) is already \(name)'s home\(member.home == nil ? " (the default relay)" : "")")
        }
    }

    /// Kind 12: a listed relay, each address valid, no two equal (ignoring case: host names
    /// are case-insensitive).
    static func checkRelayAddresses(_ name: String, _ addresses: [String], state: DirectoryState, fail: Failure) throws(DirectoryError) {
        guard state.relays[name] != nil else { throw fail(.relay, "there is no relay named \(name)") }
        // 1 to 8 is checked when decoding (malformed); this guards entries built in code.
        guard (1...RelayRecord.maximumAddresses).contains(addresses.count) else {
            throw fail(.malformed, "a relay has 1 to \(RelayRecord.maximumAddresses) addresses")
        }
        for address in addresses where !isValidAddress(address) {
            throw fail(.relay, "the address \(address) is not HOST:PORT with a port from 1 to 65535")
        }
        var seen: Set<String> = []
        for address in addresses where !seen.insert(address.lowercased()).inserted {
            throw fail(.relay, "the address \(address) is listed twice")
        }
    }
}

extension DirectoryState {
    /// " (relays: a, b)", for messages about an unknown relay name.
    var relayList: String {
        relays.isEmpty ? " (the directory lists no relay)" : " (relays: \(relays.keys.sorted().joined(separator: ", ")))"
    }
}
