import ValiseCrypto

// The canonical encoding of entry bodies (docs/PROTOCOL.md, "Directory"). Decoding checks
// every length, name and key as it reads, and refuses trailing bytes, so each body has
// exactly one encoding.
extension EntryBody {
    func write(to writer: inout ByteWriter) {
        switch self {
        case .genesis(let genesis):
            writer.writeString(genesis.organisation)
            Self.write(genesis.admins, to: &writer)
            writer.write(genesis.freshness.warnAfterSeconds)
            writer.write(genesis.freshness.refuseAfterSeconds)
        case .addRelay(let relay):
            writer.writeString(relay.name)
            writer.writeString(relay.address)
            writer.write(relay.noiseKey.bytes)
            writer.write(relay.signingKey.bytes)
            writer.write(relay.proof.bytes)
        case .removeRelay(let name):
            writer.writeString(name)
        case .enroll(let enrollment):
            Self.write(enrollment, to: &writer)
        case .rotate(let rotation):
            writer.writeString(rotation.member.value)
            writer.write(rotation.oldIdentityKey.bytes)
            writer.write(rotation.newIdentityKey.bytes)
            writer.write(rotation.newTransportKey.bytes)
            writer.write(rotation.created)
            writer.write(rotation.newKeySignature.bytes)
            if let old = rotation.oldKeySignature {
                writer.write(UInt8(1))
                writer.write(old.bytes)
            } else {
                writer.write(UInt8(0))
            }
        case .revoke(let revocation):
            switch revocation.target {
            case .member(let name):
                writer.write(UInt8(1))
                writer.writeString(name.value)
            case .identityKey(let key):
                writer.write(UInt8(2))
                writer.write(key.bytes)
            }
            writer.writeString(revocation.reason)
        case .changeAdmins(let set):
            Self.write(set, to: &writer)
        case .certifyCheckpointKey(let key):
            writer.write(key.bytes)
        case .certifyCheckpointKeyUntil(let certification):
            writer.write(certification.key.bytes)
            writer.write(certification.notAfter)
        case .enrollAtHome(let enrollment, let home):
            Self.write(enrollment, to: &writer)
            writer.writeString(home)
        case .move(let member, let home):
            writer.writeString(member.value)
            writer.writeString(home)
        case .setRelayAddresses(let name, let addresses):
            writer.writeString(name)
            writer.write(UInt8(addresses.count))
            for address in addresses { writer.writeString(address) }
        }
    }

    private static func write(_ enrollment: Enrollment, to writer: inout ByteWriter) {
        let request = enrollment.request
        writer.writeString(request.member.value)
        writer.write(request.identityKey.bytes)
        writer.write(request.transportKey.bytes)
        writer.write(request.created)
        writer.write(request.signature.bytes)
        writer.writeString(enrollment.mission)
        writer.writeString(enrollment.role)
    }

    private static func write(_ set: AdminSet, to writer: inout ByteWriter) {
        writer.write(UInt8(set.admins.count))
        for admin in set.admins {
            writer.writeString(admin.name)
            writer.write(admin.signingKey.bytes)
            writer.write(admin.transportKey.bytes)
        }
        writer.write(set.threshold)
    }

    static func read(kind: Kind, from reader: inout ByteReader) throws(FormatError) -> EntryBody {
        switch kind {
        case .genesis:
            let organisation = try reader.readText(field: "organisation name", maximum: Genesis.maximumOrganisationLength)
            let admins = try readAdminSet(&reader)
            let freshness = FreshnessPolicy(warnAfterSeconds: try reader.readUInt32(), refuseAfterSeconds: try reader.readUInt32())
            return .genesis(Genesis(organisation: organisation, admins: admins, freshness: freshness))
        case .addRelay:
            let name = try reader.readLabel(field: "relay name")
            let address = try reader.readText(field: "relay address", maximum: RelayRecord.maximumAddressLength)
            return .addRelay(RelayRecord(
                name: name, address: address, noiseKey: try reader.readAgreementPublicKey(),
                signingKey: try reader.readSignatureCheckedKey(), proof: try reader.readSignature()))
        case .removeRelay:
            return .removeRelay(name: try reader.readLabel(field: "relay name"))
        case .enroll:
            return .enroll(try readEnrollment(&reader))
        case .rotate:
            let member = try reader.readMemberName()
            let old = try reader.readSignatureCheckedKey()
            let new = try reader.readSignatureCheckedKey()
            let transport = try reader.readAgreementPublicKey()
            let created = try reader.readUInt64()
            let newSignature = try reader.readSignature()
            let oldSignature: Signature?
            switch try reader.readUInt8() {
            case 0: oldSignature = nil
            case 1: oldSignature = try reader.readSignature()
            default: throw .invalid(reader.context, "the countersigned flag must be 0 or 1")
            }
            return .rotate(Rotation(
                member: member, oldIdentityKey: old, newIdentityKey: new, newTransportKey: transport, created: created,
                newKeySignature: newSignature, oldKeySignature: oldSignature))
        case .revoke:
            let target: Revocation.Target
            switch try reader.readUInt8() {
            case 1: target = .member(try reader.readMemberName())
            // Compared with members' keys only: no point check (see docs/PROTOCOL.md, "Bodies").
            case 2: target = .identityKey(try reader.readSignatureCheckedKey())
            default: throw .invalid(reader.context, "unknown revocation target")
            }
            let reason = try reader.readText(field: "reason", maximum: Revocation.maximumReasonLength)
            return .revoke(Revocation(target: target, reason: reason))
        case .changeAdmins:
            return .changeAdmins(try readAdminSet(&reader))
        case .certifyCheckpointKey:
            return .certifyCheckpointKey(try reader.readSigningPublicKey())
        case .certifyCheckpointKeyUntil:
            return .certifyCheckpointKeyUntil(CheckpointKeyCertification(key: try reader.readSigningPublicKey(), notAfter: try reader.readUInt64()))
        case .enrollAtHome:
            let enrollment = try readEnrollment(&reader)
            return .enrollAtHome(enrollment, home: try reader.readLabel(field: "home relay"))
        case .move:
            let member = try reader.readMemberName()
            return .move(member: member, home: try reader.readLabel(field: "home relay"))
        case .setRelayAddresses:
            let name = try reader.readLabel(field: "relay name")
            let count = Int(try reader.readUInt8())
            guard (1...RelayRecord.maximumAddresses).contains(count) else {
                throw .invalid(reader.context, "a relay has 1 to \(RelayRecord.maximumAddresses) addresses")
            }
            var addresses: [String] = []
            for _ in 0..<count {
                addresses.append(try reader.readText(field: "relay address", maximum: RelayRecord.maximumAddressLength))
            }
            return .setRelayAddresses(name: name, addresses: addresses)
        }
    }

    private static func readEnrollment(_ reader: inout ByteReader) throws(FormatError) -> Enrollment {
        let member = try reader.readMemberName()
        let identity = try reader.readSignatureCheckedKey()
        let transport = try reader.readAgreementPublicKey()
        let created = try reader.readUInt64()
        let signature = try reader.readSignature()
        let request = MemberRequest(
            member: member, oldIdentityKey: nil, identityKey: identity, transportKey: transport, created: created,
            signature: signature, oldKeySignature: nil)
        let mission = try reader.readText(field: "mission", maximum: Enrollment.maximumMissionLength)
        let role = try reader.readText(field: "role", maximum: Enrollment.maximumRoleLength)
        return Enrollment(request: request, mission: mission, role: role)
    }

    private static func readAdminSet(_ reader: inout ByteReader) throws(FormatError) -> AdminSet {
        let count = Int(try reader.readUInt8())
        guard (1...AdminSet.maximumAdmins).contains(count) else {
            throw .invalid(reader.context, "an organisation has 1 to \(AdminSet.maximumAdmins) admins")
        }
        var admins: [AdminRecord] = []
        for _ in 0..<count {
            let name = try reader.readLabel(field: "admin name")
            admins.append(AdminRecord(
                name: name, signingKey: try reader.readSigningPublicKey(), transportKey: try reader.readAgreementPublicKey()))
        }
        return AdminSet(admins: admins, threshold: try reader.readUInt8())
    }
}
