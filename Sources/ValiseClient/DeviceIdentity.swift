public import ValiseCrypto
public import ValiseStore
public import ValiseDirectory

/// A device's long-term key pair.
///
/// - The identity key (Ed25519) signs, and through the Ed25519→X25519 conversion it is the
///   device's PQXDH identity key, as X3DH (and so PQXDH) with Ed25519 identities specifies.
/// - The transport key (X25519) is the device's Noise static key for the relay; keeping it
///   separate means the relay never sees a key that takes part in end-to-end encryption.
public struct DeviceKeys: Sendable {
    public let identity: SigningKey
    public let transport: AgreementPrivateKey

    public init(identity: SigningKey, transport: AgreementPrivateKey) {
        self.identity = identity
        self.transport = transport
    }

    public static func generate() -> DeviceKeys { DeviceKeys(identity: SigningKey(), transport: AgreementPrivateKey()) }
}

/// Everything in a device keystore: the member, the keys in use, keys made for a rotation
/// the directory does not show yet, and retired keys kept only to decrypt what was already
/// in flight.
public struct DeviceIdentity: Sendable {
    /// How long retired keys are kept: the longest message TTL (30 days) and a day's margin.
    public static let retiredKeyRetention: UInt64 = 31 * 86_400
    /// At most this many retired key pairs are kept.
    public static let maximumRetiredKeys = 16

    public struct PendingKeys: Sendable {
        public let created: UInt64
        public let keys: DeviceKeys
    }

    public struct RetiredKeys: Sendable {
        public let retiredAt: UInt64
        public let keys: DeviceKeys
    }

    public let memberName: MemberName
    /// When the device was made, in seconds since 1970 (UTC).
    public let createdAt: UInt64
    public internal(set) var current: DeviceKeys
    public internal(set) var pending: PendingKeys?
    public internal(set) var retired: [RetiredKeys]
    /// The key the device's local message store is encrypted under.
    public let storeKey: SymmetricKey
    /// Whether `storeKey` was made just now, for a keystore written before it existed: the
    /// keystore must be rewritten before the store is first used.
    public internal(set) var storeKeyIsNew: Bool

    public init(
        memberName: MemberName, createdAt: UInt64, current: DeviceKeys, pending: PendingKeys? = nil, retired: [RetiredKeys] = [],
        storeKey: SymmetricKey = SymmetricKey(), storeKeyIsNew: Bool = false
    ) {
        self.memberName = memberName
        self.createdAt = createdAt
        self.current = current
        self.pending = pending
        self.retired = retired
        self.storeKey = storeKey
        self.storeKeyIsNew = storeKeyIsNew
    }

    /// New random keys for `memberName`.
    public static func generate(memberName: MemberName, now: UInt64) -> DeviceIdentity {
        DeviceIdentity(memberName: memberName, createdAt: now, current: .generate())
    }

    public var identityKey: SigningKey { current.identity }
    public var transportKey: AgreementPrivateKey { current.transport }

    /// The fingerprint staff compare out of band.
    public var fingerprint: Fingerprint {
        Fingerprint(identityKey: identityKey.publicKey, memberName: memberName.value)
    }

    /// The signed request an administrator enrolls this device with.
    public func enrollmentRequest() -> MemberRequest {
        MemberRequest.enrollment(
            member: memberName, identityKey: current.identity, transportKey: current.transport.publicKey, created: createdAt)
    }

    /// Starts a rotation: new keys are made and kept as pending (an existing pending set is
    /// reused, so asking twice gives the same request). Returns the request, signed by the
    /// old and the new identity key.
    public mutating func startRotation(now: UInt64) -> MemberRequest {
        let pending = self.pending ?? PendingKeys(created: now, keys: .generate())
        self.pending = pending
        return MemberRequest.rotation(
            member: memberName, oldIdentityKey: current.identity, newIdentityKey: pending.keys.identity,
            newTransportKey: pending.keys.transport.publicKey, created: pending.created)
    }

    /// What the directory means for the keys: once it shows the pending keys as this
    /// member's, they become current and the old ones are retired; retired keys older than
    /// the retention period are dropped (the caller rewrites the keystore, wiping them).
    /// Returns whether anything changed.
    public mutating func reconcile(with member: Member?, now: UInt64) -> Bool {
        var changed = false
        if let pending, let member, member.identityKey == pending.keys.identity.publicKey {
            retired.append(RetiredKeys(retiredAt: now, keys: current))
            current = pending.keys
            self.pending = nil
            changed = true
        }
        let kept = retired.filter { now < $0.retiredAt &+ Self.retiredKeyRetention }.suffix(Self.maximumRetiredKeys)
        if kept.count != retired.count {
            retired = Array(kept)
            changed = true
        }
        return changed
    }
}

extension DeviceIdentity: KeystorePayload {
    public static let contents = KeystoreFile.Contents.device
    /// The payload version written (docs/PROTOCOL.md, "Device payload"); version 1 is read too.
    static let payloadVersion: UInt8 = 3

    /// u8 3 ‖ str16 name ‖ u64 created ‖ current keys ‖ u8 pending (‖ u64 created ‖ keys) ‖
    /// u8 retired count ‖ (u64 retired at ‖ keys)… ‖ store key (32), where keys = 32-byte Ed25519 seed ‖
    /// 32-byte X25519 private key.
    public func encodePayload() -> SecretBytes {
        let name = Array(memberName.value.utf8)
        let keyPairs = 1 + (pending == nil ? 0 : 1) + retired.count
        let count = 1 + 2 + name.count + 8 + 1 + 1 + keyPairs * 64 + (pending == nil ? 0 : 8) + retired.count * 8 + SymmetricKey.byteCount
        return SecretBytes(count: count) { buffer in
            var writer = SecretWriter(buffer)
            writer.write(Self.payloadVersion)
            writer.writeString(memberName.value)
            writer.write(createdAt)
            Self.write(current, to: &writer)
            if let pending {
                writer.write(UInt8(1))
                writer.write(pending.created)
                Self.write(pending.keys, to: &writer)
            } else {
                writer.write(UInt8(0))
            }
            writer.write(UInt8(retired.count))
            for old in retired {
                writer.write(old.retiredAt)
                Self.write(old.keys, to: &writer)
            }
            writer.write(storeKey.rawRepresentation)
            writer.finish()
        }
    }

    private static func write(_ keys: DeviceKeys, to writer: inout SecretWriter) {
        writer.write(keys.identity.seed)
        writer.write(keys.transport.rawRepresentation)
    }

    /// Reads a decrypted payload (version 1, 2 or 3; the first two get a new store key). The AEAD already proved who wrote it, so
    /// a failure here means a newer or foreign format rather than damage.
    public init(payload: SecretBytes) throws(KeystoreError) {
        let result = payload.withUnsafeBytes { raw -> Result<DeviceIdentity, KeystoreError> in
            do throws(FormatError) {
                var reader = ByteReader(raw, context: "device keystore payload")
                let version = try reader.readUInt8()
                guard (1...3).contains(version) else {
                    return .failure(.invalidPayload("payload version \(version) is not supported"))
                }
                let nameText = try reader.readString(maximumByteCount: MemberName.maximumLength, field: "member name")
                let createdAt = try reader.readUInt64()
                guard let name = try? MemberName(nameText) else { return .failure(.invalidPayload("the member name is not valid")) }
                let current = try Self.readKeys(&reader)
                var pending: PendingKeys?
                var retired: [RetiredKeys] = []
                if version >= 2 {
                    switch try reader.readUInt8() {
                    case 0: break
                    case 1: pending = PendingKeys(created: try reader.readUInt64(), keys: try Self.readKeys(&reader))
                    default: return .failure(.invalidPayload("invalid pending-keys flag"))
                    }
                    let count = Int(try reader.readUInt8())
                    guard count <= Self.maximumRetiredKeys else { return .failure(.invalidPayload("too many retired keys")) }
                    for _ in 0..<count {
                        retired.append(RetiredKeys(retiredAt: try reader.readUInt64(), keys: try Self.readKeys(&reader)))
                    }
                }
                var storeKey: SymmetricKey?
                if version >= 3 {
                    storeKey = try? SymmetricKey(try reader.readSecret(SymmetricKey.byteCount))
                    guard storeKey != nil else { return .failure(.invalidPayload("the store key is not valid")) }
                }
                try reader.expectEnd()
                return .success(DeviceIdentity(
                    memberName: name, createdAt: createdAt, current: current, pending: pending, retired: retired,
                    storeKey: storeKey ?? SymmetricKey(), storeKeyIsNew: storeKey == nil))
            } catch {
                return .failure(.invalidPayload(error.message))
            }
        }
        self = try result.get()
    }

    private static func readKeys(_ reader: inout ByteReader) throws(FormatError) -> DeviceKeys {
        let seed = try reader.readSecret(SigningKey.seedByteCount)
        let transport = try reader.readSecret(AgreementPrivateKey.byteCount)
        guard let identity = try? SigningKey(seed: seed), let transportKey = try? AgreementPrivateKey(rawRepresentation: transport) else {
            throw .invalid(reader.context, "a key is not valid")
        }
        return DeviceKeys(identity: identity, transport: transportKey)
    }
}
