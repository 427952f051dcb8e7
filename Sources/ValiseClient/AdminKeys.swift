public import ValiseCrypto
public import ValiseStore
public import ValiseDirectory

/// An administrator's keys: the Ed25519 key that signs directory entries and the X25519
/// transport key for publishing to a relay. Made on the admin's own machine; only the
/// public halves (`admin.pub`) ever leave it.
public struct AdminKeys: Sendable {
    public let name: String
    public let created: UInt64
    public let signing: SigningKey
    public let transport: AgreementPrivateKey

    public init(name: String, created: UInt64, signing: SigningKey, transport: AgreementPrivateKey) {
        self.name = name
        self.created = created
        self.signing = signing
        self.transport = transport
    }

    public static func generate(name: String, now: UInt64) -> AdminKeys {
        AdminKeys(name: name, created: now, signing: SigningKey(), transport: AgreementPrivateKey())
    }

    public var record: AdminRecord {
        AdminRecord(name: name, signingKey: signing.publicKey, transportKey: transport.publicKey)
    }

    public var publicFile: AdminPublicFile {
        AdminPublicFile(name: name, signingKey: signing, transportKey: transport.publicKey, created: created)
    }

    public var fingerprint: Fingerprint { Fingerprint(identityKey: signing.publicKey, memberName: name) }
}

extension AdminKeys: KeystorePayload {
    public static let contents = KeystoreFile.Contents.admin

    /// u8 1 ‖ str16 name ‖ u64 created ‖ 32-byte Ed25519 seed ‖ 32-byte X25519 key.
    public func encodePayload() -> SecretBytes {
        SecretBytes(count: 1 + 2 + name.utf8.count + 8 + 64) { buffer in
            var writer = SecretWriter(buffer)
            writer.write(UInt8(1))
            writer.writeString(name)
            writer.write(created)
            writer.write(signing.seed)
            writer.write(transport.rawRepresentation)
            writer.finish()
        }
    }

    public init(payload: SecretBytes) throws(KeystoreError) {
        let result = payload.withUnsafeBytes { raw -> Result<AdminKeys, KeystoreError> in
            do throws(FormatError) {
                var reader = ByteReader(raw, context: "admin keystore payload")
                guard try reader.readUInt8() == 1 else { return .failure(.invalidPayload("unsupported admin payload version")) }
                let name = try reader.readLabel(field: "admin name")
                let created = try reader.readUInt64()
                let seed = try reader.readSecret(SigningKey.seedByteCount)
                let transport = try reader.readSecret(AgreementPrivateKey.byteCount)
                try reader.expectEnd()
                guard let signing = try? SigningKey(seed: seed), let transportKey = try? AgreementPrivateKey(rawRepresentation: transport) else {
                    return .failure(.invalidPayload("a key is not valid"))
                }
                return .success(AdminKeys(name: name, created: created, signing: signing, transport: transportKey))
            } catch {
                return .failure(.invalidPayload(error.message))
            }
        }
        self = try result.get()
    }
}

/// The checkpoint key: signs (sequence, head, time) from an admin-run timer.
public struct CheckpointKeys: Sendable {
    public let created: UInt64
    public let signing: SigningKey

    public init(created: UInt64, signing: SigningKey) {
        self.created = created
        self.signing = signing
    }
}

extension CheckpointKeys: KeystorePayload {
    public static let contents = KeystoreFile.Contents.checkpoint

    /// u8 1 ‖ u64 created ‖ 32-byte Ed25519 seed.
    public func encodePayload() -> SecretBytes {
        SecretBytes(count: 1 + 8 + 32) { buffer in
            var writer = SecretWriter(buffer)
            writer.write(UInt8(1))
            writer.write(created)
            writer.write(signing.seed)
            writer.finish()
        }
    }

    public init(payload: SecretBytes) throws(KeystoreError) {
        let result = payload.withUnsafeBytes { raw -> Result<CheckpointKeys, KeystoreError> in
            do throws(FormatError) {
                var reader = ByteReader(raw, context: "checkpoint keystore payload")
                guard try reader.readUInt8() == 1 else { return .failure(.invalidPayload("unsupported checkpoint payload version")) }
                let created = try reader.readUInt64()
                let seed = try reader.readSecret(SigningKey.seedByteCount)
                try reader.expectEnd()
                guard let signing = try? SigningKey(seed: seed) else { return .failure(.invalidPayload("the key is not valid")) }
                return .success(CheckpointKeys(created: created, signing: signing))
            } catch {
                return .failure(.invalidPayload(error.message))
            }
        }
        self = try result.get()
    }
}

/// A directory holding an admin's (or a checkpoint timer's) keys: `admin.key` and
/// `admin.pub`, or `checkpoint.key`. Private (mode 0700).
public struct KeyDirectory: Sendable {
    public let path: String

    public init(path: String) {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
    }

    public var adminKey: ClientKeyFile<AdminKeys> {
        ClientKeyFile(path: path + "/admin.key", missingHint: "make one with: valise admin keygen --out DIR --name NAME (or valise admin init)")
    }

    public var adminPublicPath: String { path + "/admin.pub" }

    public var checkpointKey: ClientKeyFile<CheckpointKeys> {
        ClientKeyFile(path: path + "/checkpoint.key", missingHint: "make one with: valise admin checkpoint-key")
    }

    public func prepare() throws(ClientError) { try ValiseHome(path: path).prepare() }
}
