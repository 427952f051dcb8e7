public import ValiseCrypto
public import ValiseDirectory
public import ValiseStore

/// The relay's keys: the Noise static key clients pin (X25519), and the Ed25519 key that
/// signs statements clients check later (expiry status).
public struct RelayKeys: Sendable {
    public let created: UInt64
    public let noise: AgreementPrivateKey
    public let signing: SigningKey

    public init(created: UInt64, noise: AgreementPrivateKey, signing: SigningKey) {
        self.created = created
        self.noise = noise
        self.signing = signing
    }

    public static func generate(now: UInt64) -> RelayKeys {
        RelayKeys(created: now, noise: AgreementPrivateKey(), signing: SigningKey())
    }

    /// What `valise admin add-relay` reads.
    public var publicFile: RelayPublicFile { RelayPublicFile(noiseKey: noise.publicKey, signingKey: signing) }

    /// The fingerprint of the relay's Noise key, as admins and logs show it.
    public var noiseFingerprint: String { Hex.encode(noise.publicKey.bytes) }
}

extension RelayKeys: KeystorePayload {
    public static let contents = KeystoreFile.Contents.relay
    static let payloadByteCount = 1 + 8 + 32 + 32

    /// u8 1 ‖ u64 created ‖ 32-byte X25519 Noise private key ‖ 32-byte Ed25519 seed.
    public func encodePayload() -> SecretBytes {
        SecretBytes(count: Self.payloadByteCount) { buffer in
            var writer = SecretWriter(buffer)
            writer.write(UInt8(1))
            writer.write(created)
            writer.write(noise.rawRepresentation)
            writer.write(signing.seed)
            writer.finish()
        }
    }

    public init(payload: SecretBytes) throws(KeystoreError) {
        let result = payload.withUnsafeBytes { raw -> Result<RelayKeys, KeystoreError> in
            do throws(FormatError) {
                var reader = ByteReader(raw, context: "relay key payload")
                guard try reader.readUInt8() == 1 else { return .failure(.invalidPayload("unsupported relay payload version")) }
                let created = try reader.readUInt64()
                let noise = try reader.readSecret(AgreementPrivateKey.byteCount)
                let seed = try reader.readSecret(SigningKey.seedByteCount)
                try reader.expectEnd()
                guard let noiseKey = try? AgreementPrivateKey(rawRepresentation: noise), let signing = try? SigningKey(seed: seed) else {
                    return .failure(.invalidPayload("a key is not valid"))
                }
                return .success(RelayKeys(created: created, noise: noiseKey, signing: signing))
            } catch {
                return .failure(.invalidPayload(error.message))
            }
        }
        self = try result.get()
    }
}

/// The relay's key file, `DIR/relay.key`: a keystore encrypted under a passphrase, or — for
/// unattended servers that choose it — the same payload unencrypted, which must then be
/// readable by its owner only (mode 0600, checked on every start):
///
///     "VALISERK" ‖ u8 1 ‖ payload ‖ BLAKE2b(everything before, 32)
public struct RelayKeyFile: Sendable {
    static let magic = Array("VALISERK".utf8)
    public let path: String

    public init(directory: String) {
        path = directory + "/relay.key"
    }

    public var exists: Bool { SecureFile.exists(path) }

    var encrypted: EncryptedKeyFile<RelayKeys> {
        EncryptedKeyFile(path: path, missingHint: "create it with: valised init --dir DIR --org-bundle FILE")
    }

    /// Whether the file on disk is the unencrypted form (read without a passphrase).
    public func isUnencrypted() throws(KeyFileError) -> Bool {
        let bytes = try read()
        return bytes.starts(with: Self.magic)
    }

    public func writeUnencrypted(_ keys: RelayKeys) throws(KeyFileError) {
        let payload = keys.encodePayload()
        var bytes = Self.magic + [1]
        payload.withUnsafeBytes { bytes += $0 }
        bytes += BLAKE2b.hash(bytes, outputByteCount: 32)
        defer { wipe(&bytes) }
        do {
            try SecureFile.writeAtomically(bytes, to: path)
        } catch {
            throw KeyFileError(kind: .failure, code: error.code, message: error.message)
        }
    }

    public func readUnencrypted() throws(KeyFileError) -> RelayKeys {
        var bytes = try read()
        defer { wipe(&bytes) }
        let expected = Self.magic.count + 1 + RelayKeys.payloadByteCount + 32
        guard bytes.starts(with: Self.magic), bytes.count == expected, bytes[Self.magic.count] == 1 else {
            throw KeyFileError(kind: .damaged, code: "corrupted", message: "\(path) is not a valid unencrypted relay key file; it was left as it is")
        }
        let body = Array(bytes[0..<(expected - 32)])
        guard constantTimeEquals(BLAKE2b.hash(body, outputByteCount: 32), Array(bytes[(expected - 32)...])) else {
            throw KeyFileError(kind: .damaged, code: "corrupted", message: "\(path) is corrupted (its checksum does not match); it was left as it is")
        }
        let payload = SecretBytes(copying: bytes[(Self.magic.count + 1)..<(expected - 32)])
        do {
            return try RelayKeys(payload: payload)
        } catch {
            throw KeyFileError(error, path: path)
        }
    }

    /// Reads the file, refusing one that other users can read (even an encrypted one).
    private func read() throws(KeyFileError) -> [UInt8] {
        do {
            return try SecureFile.read(path, maximumByteCount: KeystoreFile.maximumByteCount)
        } catch where error.code == "not-found" {
            throw KeyFileError(kind: .missing, code: "no-keystore", message: "no relay key at \(path); create it with: valised init --dir DIR --org-bundle FILE")
        } catch {
            throw KeyFileError(kind: .failure, code: error.code, message: error.message)
        }
    }
}
