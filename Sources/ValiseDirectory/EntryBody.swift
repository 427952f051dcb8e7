public import ValiseCrypto

/// What a directory entry does. Each kind has a one-byte code and a canonical encoding
/// (docs/PROTOCOL.md, "Directory").
public enum EntryBody: Hashable, Sendable {
    case genesis(Genesis)
    case addRelay(RelayRecord)
    case removeRelay(name: String)
    case enroll(Enrollment)
    case rotate(Rotation)
    case revoke(Revocation)
    case changeAdmins(AdminSet)
    /// Kind 8: still read and verified so old logs verify, but a key certified so signs no
    /// checkpoint that counts (it has no not-after); kind 9 replaces it.
    case certifyCheckpointKey(SigningPublicKey)
    case certifyCheckpointKeyUntil(CheckpointKeyCertification)
    /// Kind 10: an enrollment whose member is homed at the named relay (kind 4 homes them at
    /// the default relay).
    case enrollAtHome(Enrollment, home: String)
    /// Kind 11: a member's new home relay.
    case move(member: MemberName, home: String)
    /// Kind 12: a relay's addresses, in the order clients and relay links try them; replaces
    /// the list (add relay's single address until then).
    case setRelayAddresses(name: String, addresses: [String])

    public enum Kind: UInt8, Sendable, CaseIterable {
        case genesis = 1
        case addRelay = 2
        case removeRelay = 3
        case enroll = 4
        case rotate = 5
        case revoke = 6
        case changeAdmins = 7
        case certifyCheckpointKey = 8
        case certifyCheckpointKeyUntil = 9
        case enrollAtHome = 10
        case move = 11
        case setRelayAddresses = 12

        public var name: String {
            switch self {
            case .genesis: "genesis"
            case .addRelay: "add-relay"
            case .removeRelay: "remove-relay"
            case .enroll: "enroll"
            case .rotate: "rotate"
            case .revoke: "revoke"
            case .changeAdmins: "change-admins"
            case .certifyCheckpointKey: "certify-checkpoint-key"
            case .certifyCheckpointKeyUntil: "certify-checkpoint-key-until"
            case .enrollAtHome: "enroll-at-home"
            case .move: "move"
            case .setRelayAddresses: "set-relay-addresses"
            }
        }
    }

    public var kind: Kind {
        switch self {
        case .genesis: .genesis
        case .addRelay: .addRelay
        case .removeRelay: .removeRelay
        case .enroll: .enroll
        case .rotate: .rotate
        case .revoke: .revoke
        case .changeAdmins: .changeAdmins
        case .certifyCheckpointKey: .certifyCheckpointKey
        case .certifyCheckpointKeyUntil: .certifyCheckpointKeyUntil
        case .enrollAtHome: .enrollAtHome
        case .move: .move
        case .setRelayAddresses: .setRelayAddresses
        }
    }

    /// A short human description ("enroll bob@nairobi"), for messages and listings.
    public var summary: String {
        switch self {
        case .genesis(let genesis): "genesis of \"\(genesis.organisation)\""
        case .addRelay(let relay): "add relay \(relay.name)"
        case .removeRelay(let name): "remove relay \(name)"
        case .enroll(let enrollment): "enroll \(enrollment.request.member)"
        case .rotate(let rotation): "rotate \(rotation.member)"
        case .revoke(let revocation): "revoke \(revocation.target)"
        case .changeAdmins(let set): "change admins to \(set.admins.count) (threshold \(set.threshold))"
        case .certifyCheckpointKey: "certify a checkpoint key (kind 8, without a not-after)"
        case .certifyCheckpointKeyUntil(let certification): "certify a checkpoint key until \(certification.notAfter)"
        case .enrollAtHome(let enrollment, let home): "enroll \(enrollment.request.member) at relay \(home)"
        case .move(let member, let home): "move \(member) to relay \(home)"
        case .setRelayAddresses(let name, let addresses): "set relay \(name)'s addresses (\(addresses.count))"
        }
    }
}

/// The first entry: who the organisation is and who administers it.
public struct Genesis: Hashable, Sendable {
    public static let maximumOrganisationLength = 200
    public let organisation: String
    public let admins: AdminSet
    public let freshness: FreshnessPolicy

    public init(organisation: String, admins: AdminSet, freshness: FreshnessPolicy) {
        self.organisation = organisation
        self.admins = admins
        self.freshness = freshness
    }
}

/// A new member and device, from the device's own signed request.
public struct Enrollment: Hashable, Sendable {
    public static let maximumMissionLength = 200
    public static let maximumRoleLength = 64
    public let request: MemberRequest
    /// The mission's name as people know it ("Embassy in Jakarta").
    public let mission: String
    public let role: String

    public init(request: MemberRequest, mission: String, role: String) {
        self.request = request
        self.mission = mission
        self.role = role
    }
}

/// New keys for a member. With the old key's countersignature for a planned rotation;
/// without it (a lost device), the new keys come from a plain enrollment request.
public struct Rotation: Hashable, Sendable {
    public let member: MemberName
    public let oldIdentityKey: SigningPublicKey
    public let newIdentityKey: SigningPublicKey
    public let newTransportKey: AgreementPublicKey
    public let created: UInt64
    public let newKeySignature: Signature
    /// Present when the old key countersigned the rotation.
    public let oldKeySignature: Signature?

    public var oldKeyCountersigned: Bool { oldKeySignature != nil }

    public init(
        member: MemberName, oldIdentityKey: SigningPublicKey, newIdentityKey: SigningPublicKey,
        newTransportKey: AgreementPublicKey, created: UInt64, newKeySignature: Signature, oldKeySignature: Signature?
    ) {
        self.member = member
        self.oldIdentityKey = oldIdentityKey
        self.newIdentityKey = newIdentityKey
        self.newTransportKey = newTransportKey
        self.created = created
        self.newKeySignature = newKeySignature
        self.oldKeySignature = oldKeySignature
    }

    /// A rotation from a request: a rotation request (countersigned) or, for a lost device,
    /// an enrollment request from the new device (`oldIdentityKey` is the key it replaces).
    public init(request: MemberRequest, replacing oldIdentityKey: SigningPublicKey) {
        self.init(
            member: request.member, oldIdentityKey: oldIdentityKey, newIdentityKey: request.identityKey,
            newTransportKey: request.transportKey, created: request.created, newKeySignature: request.signature,
            oldKeySignature: request.oldKeySignature)
    }

    /// The request this rotation was made from, whose signatures the verifier checks.
    public var request: MemberRequest {
        MemberRequest(
            member: member, oldIdentityKey: oldKeyCountersigned ? oldIdentityKey : nil, identityKey: newIdentityKey,
            transportKey: newTransportKey, created: created, signature: newKeySignature, oldKeySignature: oldKeySignature)
    }
}

/// Takes a member, or one identity key, out of use, with the reason.
public struct Revocation: Hashable, Sendable {
    public static let maximumReasonLength = 500

    public enum Target: Hashable, Sendable, CustomStringConvertible {
        case member(MemberName)
        case identityKey(SigningPublicKey)

        public var description: String {
            switch self {
            case .member(let name): name.value
            case .identityKey(let key): "key \(Hex.encode(key.bytes.prefix(8)))…"
            }
        }
    }

    public let target: Target
    public let reason: String

    public init(target: Target, reason: String) {
        self.target = target
        self.reason = reason
    }
}

/// A checkpoint key and the time (Unix seconds) after which none of its checkpoints count,
/// so that a device never shown the key's replacement stops trusting it too.
public struct CheckpointKeyCertification: Hashable, Sendable {
    /// The longest a certification may run: 730 days after its entry's timestamp.
    public static let maximumValiditySeconds: UInt64 = 730 * 86_400

    public let key: SigningPublicKey
    public let notAfter: UInt64

    public init(key: SigningPublicKey, notAfter: UInt64) {
        self.key = key
        self.notAfter = notAfter
    }
}
