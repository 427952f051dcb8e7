public import ValiseCrypto
public import ValiseStore
public import ValiseDirectory

/// A device's identity and transport keys, for a safe (`valise keys export`), encrypted under
/// a backup passphrase of their own. Only these two keys: sessions, prekeys and envelope
/// keys are never in a backup, because deleting them is what forward secrecy rests on, and
/// a device restored from it (`valise init --from-backup`) starts with new keys anyway.
public struct DeviceKeyBackup: Sendable {
    public let memberName: MemberName
    /// When the backup was made, in seconds since 1970 (UTC).
    public let exportedAt: UInt64
    public let keys: DeviceKeys

    public init(memberName: MemberName, exportedAt: UInt64, keys: DeviceKeys) {
        self.memberName = memberName
        self.exportedAt = exportedAt
        self.keys = keys
    }

    /// The fingerprint of the backed-up identity key.
    public var fingerprint: Fingerprint { Fingerprint(identityKey: keys.identity.publicKey, memberName: memberName.value) }

    /// The backup file at `path`, with its errors as the client's.
    public static func file(at path: String) -> ClientKeyFile<DeviceKeyBackup> {
        ClientKeyFile(path: path, missingHint: "make one on the device with: valise keys export --out FILE")
    }
}

extension DeviceKeyBackup: KeystorePayload {
    public static let contents = KeystoreFile.Contents.deviceBackup
    static let payloadVersion: UInt8 = 1

    /// u8 1 ‖ str16 member name ‖ u64 exported at ‖ 32-byte Ed25519 identity seed ‖ 32-byte
    /// X25519 transport private key (docs/PROTOCOL.md, "Device key backup payload").
    public func encodePayload() -> SecretBytes {
        SecretBytes(count: 1 + 2 + memberName.value.utf8.count + 8 + 64) { buffer in
            var writer = SecretWriter(buffer)
            writer.write(Self.payloadVersion)
            writer.writeString(memberName.value)
            writer.write(exportedAt)
            writer.write(keys.identity.seed)
            writer.write(keys.transport.rawRepresentation)
            writer.finish()
        }
    }

    public init(payload: SecretBytes) throws(KeystoreError) {
        let result = payload.withUnsafeBytes { raw -> Result<DeviceKeyBackup, KeystoreError> in
            do throws(FormatError) {
                var reader = ByteReader(raw, context: "device key backup payload")
                let version = try reader.readUInt8()
                guard version == Self.payloadVersion else {
                    return .failure(.invalidPayload("backup payload version \(version) is not supported"))
                }
                let nameText = try reader.readString(maximumByteCount: MemberName.maximumLength, field: "member name")
                guard let name = try? MemberName(nameText) else { return .failure(.invalidPayload("the member name is not valid")) }
                let exportedAt = try reader.readUInt64()
                let seed = try reader.readSecret(SigningKey.seedByteCount)
                let transport = try reader.readSecret(AgreementPrivateKey.byteCount)
                try reader.expectEnd()
                guard let identity = try? SigningKey(seed: seed), let transportKey = try? AgreementPrivateKey(rawRepresentation: transport) else {
                    return .failure(.invalidPayload("a key is not valid"))
                }
                return .success(DeviceKeyBackup(
                    memberName: name, exportedAt: exportedAt, keys: DeviceKeys(identity: identity, transport: transportKey)))
            } catch {
                return .failure(.invalidPayload(error.message))
            }
        }
        self = try result.get()
    }
}

/// An admin's keys for a safe (`valise admin keys export`): the admin payload, under a
/// backup passphrase and a contents type of its own, so that a backup is never taken for
/// a live `admin.key`.
public struct AdminKeyBackup: Sendable {
    public let keys: AdminKeys

    public init(keys: AdminKeys) { self.keys = keys }

    public static func file(at path: String) -> ClientKeyFile<AdminKeyBackup> {
        ClientKeyFile(path: path, missingHint: "make one with: valise admin keys export --key DIR --out FILE")
    }
}

extension AdminKeyBackup: KeystorePayload {
    public static let contents = KeystoreFile.Contents.adminBackup
    public func encodePayload() -> SecretBytes { keys.encodePayload() }
    public init(payload: SecretBytes) throws(KeystoreError) { keys = try AdminKeys(payload: payload) }
}
