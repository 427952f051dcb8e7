/// The encrypted key file format shared by devices, admins and relays (docs/PROTOCOL.md,
/// "Keystore"). This type only converts bytes; reading and writing files is elsewhere.
///
///     offset  size  field
///     0       8     magic "VALISEKS"
///     8       1     format version (1)
///     9       1     contents (1 device, 2 admin, 3 relay, 4 checkpoint, 5 device backup, 6 admin backup)
///     10      1     KDF algorithm (1 = Argon2id v1.3, parallelism 1)
///     11      1     KDF profile (0 standard, 1 insecure-test)
///     12      4     Argon2 iterations t, u32 big-endian
///     16      4     Argon2 memory in KiB, u32 big-endian
///     20      16    salt
///     36      24    XChaCha20-Poly1305 nonce
///     60      4     ciphertext length n (including the 16-byte tag), u32 big-endian
///     64      n     XChaCha20-Poly1305(key, nonce, associated data = bytes 0..<64, payload)
///     64+n    32    BLAKE2b-256 of bytes 0..<64+n (a checksum, not a MAC)
///
/// The header is the AEAD's associated data, so no header field can be changed without the
/// passphrase. The unkeyed checksum lets a damaged file be told apart from a wrong passphrase.
public struct KeystoreFile: Sendable {
    public enum Contents: UInt8, Sendable {
        case device = 1
        case admin = 2
        case relay = 3
        case checkpoint = 4
        /// A device's identity and transport keys under a backup passphrase (`valise keys export`).
        case deviceBackup = 5
        /// An admin's keys under a backup passphrase (`valise admin keys export`).
        case adminBackup = 6

        public var name: String {
            switch self {
            case .device: "device"
            case .admin: "admin"
            case .relay: "relay"
            case .checkpoint: "checkpoint"
            case .deviceBackup: "device key backup"
            case .adminBackup: "admin key backup"
            }
        }
    }

    public static let magic: [UInt8] = Array("VALISEKS".utf8)
    public static let formatVersion: UInt8 = 1
    static let argon2idAlgorithm: UInt8 = 1
    public static let headerByteCount = 64
    public static let checksumByteCount = 32
    /// No valid keystore is larger; a larger file is refused before it is read in full.
    public static let maximumByteCount = 64 * 1024
    public static let maximumPayloadByteCount =
        maximumByteCount - headerByteCount - XChaChaPoly.tagByteCount - checksumByteCount

    public let contents: Contents
    public let parameters: PasswordKDFParameters
    let salt: [UInt8]
    let nonce: XChaChaPoly.Nonce
    let header: [UInt8]
    let ciphertext: [UInt8]

    /// Parses and checks everything that can be checked without the passphrase.
    public init(parsing bytes: [UInt8]) throws(KeystoreError) {
        guard bytes.count <= Self.maximumByteCount else { throw .tooLarge }
        // A file that is a beginning of the magic (even an empty one) was cut short.
        guard bytes.count >= Self.magic.count else {
            throw bytes == Array(Self.magic.prefix(bytes.count)) ? .truncated : .notAKeystore
        }
        guard Array(bytes.prefix(Self.magic.count)) == Self.magic else { throw .notAKeystore }
        guard bytes.count >= Self.magic.count + 1 else { throw .truncated }
        let version = bytes[Self.magic.count]
        guard version == Self.formatVersion else { throw .unsupportedVersion(version) }
        guard bytes.count >= Self.headerByteCount else { throw .truncated }

        let parsed: Parsed
        do {
            parsed = try bytes.withUnsafeBytes { (raw) throws(FormatError) -> Parsed in
                var reader = ByteReader(raw, context: "keystore")
                _ = try reader.readBytes(Self.magic.count + 1)
                return Parsed(
                    contents: try reader.readUInt8(),
                    algorithm: try reader.readUInt8(),
                    profile: try reader.readUInt8(),
                    iterations: try reader.readUInt32(),
                    memoryKiB: try reader.readUInt32(),
                    salt: try reader.readBytes(Argon2id.saltByteCount),
                    nonce: try reader.readBytes(XChaChaPoly.nonceByteCount),
                    ciphertextLength: Int(try reader.readUInt32())
                )
            }
        } catch {
            throw .truncated
        }

        let expectedCount = Self.headerByteCount + parsed.ciphertextLength + Self.checksumByteCount
        guard parsed.ciphertextLength >= XChaChaPoly.tagByteCount, expectedCount <= Self.maximumByteCount else {
            throw .corrupted("its length field is impossible")
        }
        guard bytes.count >= expectedCount else { throw .truncated }
        guard bytes.count == expectedCount else { throw .corrupted("it is longer than its header says") }
        let body = Array(bytes[0..<(expectedCount - Self.checksumByteCount)])
        let checksum = Array(bytes[(expectedCount - Self.checksumByteCount)...])
        guard constantTimeEquals(BLAKE2b.hash(body, outputByteCount: Self.checksumByteCount), checksum) else {
            throw .corrupted
        }

        // The checksum matched, so odd values below were written that way, not damaged.
        guard let contents = Contents(rawValue: parsed.contents) else {
            throw .invalidPayload("unknown contents type \(parsed.contents)")
        }
        guard parsed.algorithm == Self.argon2idAlgorithm else {
            throw .unsupportedParameters("unknown algorithm \(parsed.algorithm)")
        }
        guard let profile = PasswordKDFParameters.Profile(rawValue: parsed.profile) else {
            throw .unsupportedParameters("unknown profile \(parsed.profile)")
        }
        let parameters = PasswordKDFParameters(
            profile: profile, iterations: parsed.iterations, memoryKiB: parsed.memoryKiB
        )
        guard parameters.isAllowed else { throw .unsupportedParameters(parameters.description) }

        self.contents = contents
        self.parameters = parameters
        self.salt = parsed.salt
        self.nonce = try! XChaChaPoly.Nonce(bytes: parsed.nonce)
        self.header = Array(bytes[0..<Self.headerByteCount])
        self.ciphertext = Array(bytes[Self.headerByteCount..<(expectedCount - Self.checksumByteCount)])
    }

    private struct Parsed {
        let contents: UInt8, algorithm: UInt8, profile: UInt8
        let iterations: UInt32, memoryKiB: UInt32
        let salt: [UInt8], nonce: [UInt8]
        let ciphertextLength: Int
    }

    /// Runs Argon2id (slow on purpose) to get the file key from a passphrase.
    public func deriveKey(passphrase: SecretBytes) throws(KeystoreError) -> SymmetricKey {
        do {
            return try Argon2id.deriveKey(passphrase: passphrase, salt: salt, parameters: parameters)
        } catch {
            throw .keyDerivationFailed(error)
        }
    }

    /// Decrypts the payload with an already derived key into guarded memory.
    public func open(with key: SymmetricKey, expecting expected: Contents) throws(KeystoreError) -> SecretBytes {
        guard contents == expected else { throw .wrongContents(expected: expected.name, found: contents.name) }
        do {
            return try XChaChaPoly.openSecret(ciphertext, using: key, nonce: nonce, authenticating: header)
        } catch {
            throw .wrongPassphrase
        }
    }

    /// Derives the key from `passphrase` and decrypts the payload.
    public func open(passphrase: SecretBytes, expecting expected: Contents) throws(KeystoreError) -> SecretBytes {
        guard contents == expected else { throw .wrongContents(expected: expected.name, found: contents.name) }
        return try open(with: deriveKey(passphrase: passphrase), expecting: expected)
    }

    /// Encrypts `payload` under a key derived from `passphrase` with a fresh salt and nonce.
    /// Returns the file's bytes and the derived key (to check a written copy without
    /// running Argon2id again).
    public static func seal(
        _ payload: SecretBytes, contents: Contents, passphrase: SecretBytes, parameters: PasswordKDFParameters
    ) throws(KeystoreError) -> (bytes: [UInt8], key: SymmetricKey) {
        guard payload.count <= maximumPayloadByteCount else { throw .tooLarge }
        guard parameters.isAllowed else { throw .unsupportedParameters(parameters.description) }
        // The standard label is only for parameters at least as strong as the standard.
        guard parameters.profile == .insecureTest || parameters.meetsStandard else {
            throw .unsupportedParameters("\(parameters) is weaker than the standard profile it claims")
        }
        let salt = Random.bytes(count: Argon2id.saltByteCount)
        let nonce = XChaChaPoly.Nonce.random()
        let key: SymmetricKey
        do {
            key = try Argon2id.deriveKey(passphrase: passphrase, salt: salt, parameters: parameters)
        } catch {
            throw .keyDerivationFailed(error)
        }

        var writer = ByteWriter(capacity: headerByteCount + payload.count + 64)
        writer.write(magic)
        writer.write(formatVersion)
        writer.write(contents.rawValue)
        writer.write(argon2idAlgorithm)
        writer.write(parameters.profile.rawValue)
        writer.write(parameters.iterations)
        writer.write(parameters.memoryKiB)
        writer.write(salt)
        writer.write(nonce.bytes)
        writer.write(UInt32(payload.count + XChaChaPoly.tagByteCount))
        let header = writer.bytes
        assert(header.count == headerByteCount)
        writer.write(XChaChaPoly.seal(payload, using: key, nonce: nonce, authenticating: header))
        writer.write(BLAKE2b.hash(writer.bytes, outputByteCount: checksumByteCount))
        return (writer.bytes, key)
    }
}
