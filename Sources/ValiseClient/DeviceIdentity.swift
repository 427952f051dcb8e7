public import ValiseCrypto

/// A device's long-term keys and the member it belongs to.
///
/// - The identity key (Ed25519) signs, and through the Ed25519→X25519 conversion it is the
///   device's X3DH identity key, as X3DH with Ed25519 identities specifies.
/// - The transport key (X25519) is the device's Noise static key for talking to the relay;
///   keeping it separate means the relay never sees a key that takes part in end-to-end
///   encryption.
public struct DeviceIdentity: Sendable {
    public let memberName: MemberName
    /// When the keys were made, in seconds since 1970 (UTC).
    public let createdAt: UInt64
    public let identityKey: SigningKey
    public let transportKey: AgreementPrivateKey

    public init(memberName: MemberName, createdAt: UInt64, identityKey: SigningKey, transportKey: AgreementPrivateKey) {
        self.memberName = memberName
        self.createdAt = createdAt
        self.identityKey = identityKey
        self.transportKey = transportKey
    }

    /// New random keys for `memberName`.
    public static func generate(memberName: MemberName, now: UInt64) -> DeviceIdentity {
        DeviceIdentity(
            memberName: memberName, createdAt: now,
            identityKey: SigningKey(), transportKey: AgreementPrivateKey()
        )
    }

    /// The fingerprint staff compare out of band.
    public var fingerprint: Fingerprint {
        Fingerprint(identityKey: identityKey.publicKey, memberName: memberName.value)
    }
}

extension DeviceIdentity {
    /// Version of the encrypted payload inside a device keystore (docs/PROTOCOL.md, "Keystore").
    static let payloadVersion: UInt8 = 1

    /// The payload, built in guarded memory:
    /// u8 version ‖ u16 name length ‖ name ‖ u64 created ‖ 32-byte Ed25519 seed ‖ 32-byte X25519 key.
    func encodePayload() -> SecretBytes {
        let name = Array(memberName.value.utf8)
        let seed = identityKey.seed
        let transport = transportKey.rawRepresentation
        let count = 1 + 2 + name.count + 8 + seed.count + transport.count
        return SecretBytes(count: count) { buffer in
            var writer = SecretWriter(buffer)
            writer.write(Self.payloadVersion)
            writer.writeString(memberName.value)
            writer.write(createdAt)
            writer.write(seed)
            writer.write(transport)
            writer.finish()
        }
    }

    /// Reads a decrypted payload. The AEAD already proved who wrote it, so a failure here
    /// means a newer or foreign format rather than damage.
    init(payload: SecretBytes) throws(KeystoreError) {
        let result = payload.withUnsafeBytes { raw -> Result<DeviceIdentity, KeystoreError> in
            do throws(FormatError) {
                var reader = ByteReader(raw, context: "device keystore payload")
                let version = try reader.readUInt8()
                guard version == Self.payloadVersion else {
                    return .failure(.invalidPayload("payload version \(version) is not supported"))
                }
                let nameText = try reader.readString(maximumByteCount: 2 * MemberName.maximumPartLength + 1, field: "member name")
                let createdAt = try reader.readUInt64()
                let seed = try reader.readSecret(SigningKey.seedByteCount)
                let transport = try reader.readSecret(AgreementPrivateKey.byteCount)
                try reader.expectEnd()
                guard let name = try? MemberName(nameText) else {
                    return .failure(.invalidPayload("the member name is not valid"))
                }
                guard let identity = try? SigningKey(seed: seed),
                      let transportKey = try? AgreementPrivateKey(rawRepresentation: transport) else {
                    return .failure(.invalidPayload("a key is not valid"))
                }
                return .success(DeviceIdentity(memberName: name, createdAt: createdAt, identityKey: identity, transportKey: transportKey))
            } catch {
                return .failure(.invalidPayload(error.message))
            }
        }
        self = try result.get()
    }
}
