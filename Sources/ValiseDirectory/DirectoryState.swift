public import ValiseCrypto

/// A member as the directory says: current keys, earlier keys, and whether still active.
public struct Member: Hashable, Sendable {
    public enum Status: Hashable, Sendable {
        case active
        case revoked(reason: String, sequence: UInt64)
    }

    /// Keys a member used before a rotation.
    public struct RetiredKeys: Hashable, Sendable {
        public let identityKey: SigningPublicKey
        public let transportKey: AgreementPublicKey
        /// The rotation entry that retired them.
        public let retiredAt: UInt64
        /// Whether the old key countersigned its replacement (false: lost device).
        public let countersigned: Bool
    }

    public let name: MemberName
    public internal(set) var mission: String
    public internal(set) var role: String
    public internal(set) var identityKey: SigningPublicKey
    public internal(set) var transportKey: AgreementPublicKey
    public internal(set) var enrolledAt: UInt64
    public internal(set) var status: Status
    public internal(set) var retiredKeys: [RetiredKeys]
    /// The home relay an enroll-at-home or move entry named; nil: the organisation's default
    /// relay (see `DirectoryState.homeRelay(of:)`).
    public internal(set) var home: String?

    public var isActive: Bool { status == .active }
    public var fingerprint: Fingerprint { Fingerprint(identityKey: identityKey, memberName: name.value) }
}

/// A key revoked by an entry, and why.
public struct RevokedKey: Hashable, Sendable {
    public let member: MemberName
    public let reason: String
    public let sequence: UInt64
}

/// Everything a verified log says: the organisation, its admins, members, relays and
/// revocations, as of the head entry.
public struct DirectoryState: Sendable {
    public let organisation: String
    public let genesisHash: EntryHash
    public let freshness: FreshnessPolicy
    public internal(set) var headSequence: UInt64
    public internal(set) var headHash: EntryHash
    public internal(set) var headTimestamp: UInt64
    public internal(set) var admins: AdminSet
    public internal(set) var members: [MemberName: Member] = [:]
    public internal(set) var relays: [String: RelayRecord] = [:]
    /// Listed relays' names in the order their add-relay entries came; the first is the
    /// default relay.
    var relayOrder: [String] = []
    public internal(set) var revokedKeys: [SigningPublicKey: RevokedKey] = [:]
    /// Checkpoint keys in the order they were certified; only the last one signs
    /// checkpoints that count, and only if it has a not-after (kind 9).
    public internal(set) var checkpointKeys: [CertifiedCheckpointKey] = []

    /// Every key ever given to a member, admin or relay: no key may serve twice.
    var usedSigningKeys: Set<SigningPublicKey> = []
    var usedAgreementKeys: Set<AgreementPublicKey> = []

    init(genesis: Genesis, entry: DirectoryEntry) {
        organisation = genesis.organisation
        genesisHash = entry.hash
        freshness = genesis.freshness
        headSequence = entry.sequence
        headHash = entry.hash
        headTimestamp = entry.timestamp
        admins = genesis.admins
    }

    public var activeMembers: [Member] { members.values.filter(\.isActive).sorted { $0.name < $1.name } }

    /// The newest certified checkpoint key, if one was certified.
    public var checkpointKey: SigningPublicKey? { checkpointKeys.last?.key }

    /// The relay listed with the earliest add-relay entry: the home of every member no
    /// enroll-at-home or move entry homed elsewhere.
    public var defaultRelay: RelayRecord? { relayOrder.first.flatMap { relays[$0] } }

    /// The listed relays in the order their add-relay entries came (the default first).
    public var orderedRelays: [RelayRecord] { relayOrder.compactMap { relays[$0] } }

    /// The member's home relay: the one an enroll-at-home or move entry named, else the
    /// default relay. Nil only when the organisation lists no relay (an active member's
    /// named home is always listed; a revoked member's or an unknown name falls back to the
    /// default).
    public func homeRelay(of member: MemberName) -> RelayRecord? {
        members[member]?.home.flatMap { relays[$0] } ?? defaultRelay
    }

    /// The name of the relay the member is homed at, explicit or default.
    func homeName(of member: Member) -> String? { member.home ?? relayOrder.first }

    /// The member whose current identity key this is.
    public func member(identityKey: SigningPublicKey) -> Member? {
        members.values.first { $0.identityKey == identityKey }
    }

    /// Transport keys a relay admits: active members' devices, and the admins (to publish).
    public var admittedTransportKeys: Set<AgreementPublicKey> {
        Set(members.values.filter(\.isActive).map(\.transportKey)).union(admins.admins.map(\.transportKey))
    }
}

/// A checkpoint key as the log certified it: the entry that did, and its not-after (nil for
/// a kind-8 certification, whose key signs no checkpoint that counts).
public struct CertifiedCheckpointKey: Hashable, Sendable {
    public let key: SigningPublicKey
    public let certifiedAt: UInt64
    public let notAfter: UInt64?
}
