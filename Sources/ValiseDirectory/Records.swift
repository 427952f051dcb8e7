public import ValiseCrypto

/// One administrator: a name, the Ed25519 key that signs directory entries, and the X25519
/// key the admin's machine uses to connect to a relay (to publish).
public struct AdminRecord: Hashable, Sendable {
    public let name: String
    public let signingKey: SigningPublicKey
    public let transportKey: AgreementPublicKey

    public init(name: String, signingKey: SigningPublicKey, transportKey: AgreementPublicKey) {
        self.name = name
        self.signingKey = signingKey
        self.transportKey = transportKey
    }
}

/// The administrators in force and how many of them must sign an entry.
public struct AdminSet: Hashable, Sendable {
    public static let maximumAdmins = 32

    public let admins: [AdminRecord]
    public let threshold: UInt8

    public init(admins: [AdminRecord], threshold: UInt8) {
        self.admins = admins
        self.threshold = threshold
    }

    public func admin(signingKey: SigningPublicKey) -> AdminRecord? {
        admins.first { $0.signingKey == signingKey }
    }
}

/// How fresh a client's view of the directory must be: older than `warnAfter` since the
/// newest checkpoint gets a warning, older than `refuseAfter` stops ordinary sends.
public struct FreshnessPolicy: Hashable, Sendable {
    public let warnAfterSeconds: UInt32
    public let refuseAfterSeconds: UInt32

    public init(warnAfterSeconds: UInt32, refuseAfterSeconds: UInt32) {
        self.warnAfterSeconds = warnAfterSeconds
        self.refuseAfterSeconds = refuseAfterSeconds
    }

    /// 48 hours and 7 days.
    public static let standard = FreshnessPolicy(warnAfterSeconds: 48 * 3600, refuseAfterSeconds: 7 * 86_400)
}

/// A relay: where it listens, its Noise static key (which clients pin) and its Ed25519 key
/// for signed statements, with the relay's own signature proving it holds the signing key.
public struct RelayRecord: Hashable, Sendable {
    public static let maximumAddressLength = 255
    /// A set-relay-addresses entry lists 1 to 8 addresses.
    public static let maximumAddresses = 8

    public let name: String
    /// Where the relay listens, in the order to try (several nodes of one relay); never
    /// empty. Add relay gives one; a set-relay-addresses entry replaces the list.
    public internal(set) var addresses: [String]
    public let noiseKey: AgreementPublicKey
    public let signingKey: SigningPublicKey
    public let proof: Signature

    /// The first address, the one add relay gave until a set-relay-addresses entry.
    public var address: String { addresses[0] }

    public init(name: String, address: String, noiseKey: AgreementPublicKey, signingKey: SigningPublicKey, proof: Signature) {
        self.name = name
        self.addresses = [address]
        self.noiseKey = noiseKey
        self.signingKey = signingKey
        self.proof = proof
    }

    /// What the relay's signing key signs to prove possession: its two public keys.
    static func proofStatement(noiseKey: AgreementPublicKey, signingKey: SigningPublicKey) -> [UInt8] {
        noiseKey.bytes + signingKey.bytes
    }

    public var hasValidProof: Bool {
        signingKey.isValidSignature(
            proof, for: Self.proofStatement(noiseKey: noiseKey, signingKey: signingKey), purpose: .relayPublicKey)
    }
}

extension SignaturePurpose {
    /// Directory entries, by admins.
    public static let directoryEntry = SignaturePurpose("directory-entry")
    /// A new device's enrollment request, by its identity key.
    public static let enrollmentRequest = SignaturePurpose("enrollment-request")
    /// A rotation request, by the new and (when it countersigns) the old identity key.
    public static let rotationRequest = SignaturePurpose("rotation-request")
    /// An admin's public-key file, by the admin's signing key.
    public static let adminPublicKey = SignaturePurpose("admin-public-key")
    /// A relay's public-key file, by the relay's signing key.
    public static let relayPublicKey = SignaturePurpose("relay-public-key")
    /// A freshness checkpoint, by the certified checkpoint key.
    public static let checkpoint = SignaturePurpose("checkpoint")
}
