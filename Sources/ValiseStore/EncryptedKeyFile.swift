public import ValiseCrypto

/// What an encrypted key file can hold: a versioned payload for one contents type.
public protocol KeystorePayload: Sendable {
    static var contents: KeystoreFile.Contents { get }
    /// The payload, built in guarded memory.
    func encodePayload() -> SecretBytes
    /// Reads a decrypted payload.
    init(payload: SecretBytes) throws(KeystoreError)
}

/// A keystore file on disk (device, admin or checkpoint keys): bounded, permission-checked
/// reads; writes that are atomic, durable and read back before they replace anything.
public struct EncryptedKeyFile<Payload: KeystorePayload>: Sendable {
    public let path: String
    /// Says how to create the file, for the error when it is missing.
    let missingHint: String

    public init(path: String, missingHint: String) {
        self.path = path
        self.missingHint = missingHint
    }

    /// Whether a file (valid or not) is present.
    public var exists: Bool { SecureFile.exists(path) }

    /// Reads the header without unlocking: the contents type and KDF parameters.
    public func inspect() throws(KeyFileError) -> KeystoreFile {
        let bytes: [UInt8]
        do {
            bytes = try SecureFile.read(path, maximumByteCount: KeystoreFile.maximumByteCount)
        } catch where error.code == "not-found" {
            throw KeyFileError(kind: .missing, code: "no-keystore", message: "no \(Payload.contents.name) keystore at \(path); \(missingHint)")
        } catch where error.code == "too-large" {
            throw KeyFileError(KeystoreError.tooLarge, path: path)
        } catch {
            throw KeyFileError(kind: .failure, code: error.code, message: error.message)
        }
        do {
            return try KeystoreFile(parsing: bytes)
        } catch {
            throw KeyFileError(error, path: path)
        }
    }

    /// Unlocks the file. A wrong passphrase or a damaged file changes nothing on disk.
    public func unlock(passphrase: SecretBytes) throws(KeyFileError) -> (payload: Payload, file: KeystoreFile) {
        let file = try inspect()
        do {
            let payload = try file.open(passphrase: passphrase, expecting: Payload.contents)
            return (try Payload(payload: payload), file)
        } catch {
            throw KeyFileError(error, path: path)
        }
    }

    /// Encrypts and writes `payload`; with `backupSuffix`, an existing file is kept under
    /// that suffix. Returns the backup's path.
    @discardableResult
    public func write(
        _ payload: Payload, passphrase: SecretBytes, parameters: PasswordKDFParameters, backupSuffix: String? = nil
    ) throws(KeyFileError) -> String? {
        let plaintext = payload.encodePayload()
        let sealed: (bytes: [UInt8], key: SymmetricKey)
        do {
            sealed = try KeystoreFile.seal(plaintext, contents: Payload.contents, passphrase: passphrase, parameters: parameters)
        } catch {
            throw KeyFileError(error, path: path)
        }
        do {
            // Read back what the disk returns and decrypt it with the same key before the
            // old file is replaced.
            return try SecureFile.writeAtomically(sealed.bytes, to: path, backupSuffix: backupSuffix) { written in
                guard let reopened = try? KeystoreFile(parsing: written).open(with: sealed.key, expecting: Payload.contents) else {
                    return false
                }
                return reopened.constantTimeEquals(plaintext)
            }
        } catch {
            throw KeyFileError(kind: .failure, code: error.code, message: error.message)
        }
    }
}

/// Why a key file could not be read, unlocked or written. Messages name the file and never
/// hold key material or the passphrase.
public struct KeyFileError: CodedError {
    public enum Kind: Sendable {
        /// There is no file: nothing set up yet.
        case missing
        case wrongPassphrase
        /// The file is damaged, truncated or in an unsupported format; it was left as it is.
        case damaged
        /// Anything else: permissions, the system, key derivation.
        case failure
    }

    public let kind: Kind
    public let code: String
    public let message: String

    public init(kind: Kind, code: String, message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    /// A keystore format or unlocking error for the file at `path`.
    public init(_ error: KeystoreError, path: String) {
        switch error.code {
        case "wrong-passphrase":
            self.init(kind: .wrongPassphrase, code: error.code, message: "wrong passphrase for \(path)")
        case "wrong-contents", "key-derivation-failed":
            self.init(kind: .failure, code: error.code, message: "\(path): \(error.message)")
        default:
            self.init(kind: .damaged, code: error.code, message: "\(path): \(error.message); the file was left as it is")
        }
    }
}
