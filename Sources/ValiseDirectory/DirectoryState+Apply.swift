// How each entry kind changes the state, once `DirectoryVerifier.check` accepted it.
extension DirectoryState {
    mutating func markUsed(_ set: AdminSet) {
        for admin in set.admins {
            usedSigningKeys.insert(admin.signingKey)
            usedAgreementKeys.insert(admin.transportKey)
        }
    }

    /// The member is revoked, with every identity key it has had.
    private mutating func revokeMember(_ name: MemberName, reason: String, sequence: UInt64) {
        var member = members[name]!
        member.status = .revoked(reason: reason, sequence: sequence)
        for key in [member.identityKey] + member.retiredKeys.map(\.identityKey) where revokedKeys[key] == nil {
            revokedKeys[key] = RevokedKey(member: name, reason: reason, sequence: sequence)
        }
        members[name] = member
    }

    /// Applies an entry that `DirectoryVerifier.check` accepted.
    mutating func apply(_ entry: DirectoryEntry) {
        headSequence = entry.sequence
        headHash = entry.hash
        headTimestamp = entry.timestamp
        switch entry.body {
        case .genesis:
            preconditionFailure("a checked genesis is applied by the verifier")
        case .addRelay(let relay):
            relays[relay.name] = relay
            relayOrder.append(relay.name)
            usedAgreementKeys.insert(relay.noiseKey)
            usedSigningKeys.insert(relay.signingKey)
        case .removeRelay(let name):
            relays[name] = nil
            relayOrder.removeAll { $0 == name }
        case .enroll(let enrollment):
            enroll(enrollment, home: nil, sequence: entry.sequence)
        case .enrollAtHome(let enrollment, let home):
            enroll(enrollment, home: home, sequence: entry.sequence)
        case .move(let member, let home):
            members[member]!.home = home
        case .setRelayAddresses(let name, let addresses):
            relays[name]!.addresses = addresses
        case .rotate(let rotation):
            var member = members[rotation.member]!
            member.retiredKeys.append(Member.RetiredKeys(
                identityKey: member.identityKey, transportKey: member.transportKey, retiredAt: entry.sequence,
                countersigned: rotation.oldKeyCountersigned))
            member.identityKey = rotation.newIdentityKey
            member.transportKey = rotation.newTransportKey
            members[rotation.member] = member
            usedSigningKeys.insert(rotation.newIdentityKey)
            usedAgreementKeys.insert(rotation.newTransportKey)
        case .revoke(let revocation):
            switch revocation.target {
            case .member(let name):
                revokeMember(name, reason: revocation.reason, sequence: entry.sequence)
            case .identityKey(let key):
                let owner = members.values.first { member in
                    member.identityKey == key || member.retiredKeys.contains { $0.identityKey == key }
                }!
                if owner.identityKey == key && owner.isActive {
                    // Revoking a member's current key revokes the member, as a member revocation does.
                    revokeMember(owner.name, reason: revocation.reason, sequence: entry.sequence)
                } else {
                    revokedKeys[key] = RevokedKey(member: owner.name, reason: revocation.reason, sequence: entry.sequence)
                }
            }
        case .changeAdmins(let set):
            admins = set
            markUsed(set)
        case .certifyCheckpointKey(let key):
            checkpointKeys.append(CertifiedCheckpointKey(key: key, certifiedAt: entry.sequence, notAfter: nil))
            usedSigningKeys.insert(key)
        case .certifyCheckpointKeyUntil(let certification):
            checkpointKeys.append(CertifiedCheckpointKey(key: certification.key, certifiedAt: entry.sequence, notAfter: certification.notAfter))
            usedSigningKeys.insert(certification.key)
        }
    }

    /// A new member record: active, no earlier keys, homed as the entry says (nil: default).
    mutating func enroll(_ enrollment: Enrollment, home: String?, sequence: UInt64) {
        let request = enrollment.request
        members[request.member] = Member(
            name: request.member, mission: enrollment.mission, role: enrollment.role,
            identityKey: request.identityKey, transportKey: request.transportKey, enrolledAt: sequence,
            status: .active, retiredKeys: [], home: home)
        usedSigningKeys.insert(request.identityKey)
        usedAgreementKeys.insert(request.transportKey)
    }
}
