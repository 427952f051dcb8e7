public import ValiseCrypto
import ValiseStore

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
    public func inspect() throws(ClientError) -> KeystoreFile {
        let bytes: [UInt8]
        do {
            bytes = try SecureFile.read(path, maximumByteCount: KeystoreFile.maximumByteCount)
        } catch where error.code == "not-found" {
            throw ClientError(kind: .notSetUp, code: "no-keystore", message: "no \(Payload.contents.name) keystore at \(path); \(missingHint)")
        } catch where error.code == "too-large" {
            throw ClientError(KeystoreError.tooLarge, path: path)
        } catch {
            throw ClientError(error)
        }
        do {
            return try KeystoreFile(parsing: bytes)
        } catch {
            throw ClientError(error, path: path)
        }
    }

    /// Unlocks the file. A wrong passphrase or a damaged file changes nothing on disk.
    public func unlock(passphrase: SecretBytes) throws(ClientError) -> (payload: Payload, file: KeystoreFile) {
        let file = try inspect()
        do {
            let payload = try file.open(passphrase: passphrase, expecting: Payload.contents)
            return (try Payload(payload: payload), file)
        } catch {
            throw ClientError(error, path: path)
        }
    }

    /// Encrypts and writes `payload`; with `backupSuffix`, an existing file is kept under
    /// that suffix. Returns the backup's path.
    @discardableResult
    public func write(
        _ payload: Payload, passphrase: SecretBytes, parameters: PasswordKDFParameters, backupSuffix: String? = nil
    ) throws(ClientError) -> String? {
        let plaintext = payload.encodePayload()
        let sealed: (bytes: [UInt8], key: SymmetricKey)
        do {
            sealed = try KeystoreFile.seal(plaintext, contents: Payload.contents, passphrase: passphrase, parameters: parameters)
        } catch {
            throw ClientError(error, path: path)
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
            throw ClientError(error)
        }
    }
}
