public import ValiseCrypto
public import ValiseStore

/// An encrypted key file (device, admin or checkpoint keys) whose errors are the client's:
/// `EncryptedKeyFile` from the store, with each failure turned into a `ClientError`.
public struct ClientKeyFile<Payload: KeystorePayload>: Sendable {
    let file: EncryptedKeyFile<Payload>

    public init(path: String, missingHint: String) {
        file = EncryptedKeyFile(path: path, missingHint: missingHint)
    }

    public var path: String { file.path }
    public var exists: Bool { file.exists }

    public func inspect() throws(ClientError) -> KeystoreFile {
        do { return try file.inspect() } catch { throw ClientError(error) }
    }

    public func unlock(passphrase: SecretBytes) throws(ClientError) -> (payload: Payload, file: KeystoreFile) {
        do { return try file.unlock(passphrase: passphrase) } catch { throw ClientError(error) }
    }

    @discardableResult
    public func write(
        _ payload: Payload, passphrase: SecretBytes, parameters: PasswordKDFParameters, backupSuffix: String? = nil
    ) throws(ClientError) -> String? {
        do {
            return try file.write(payload, passphrase: passphrase, parameters: parameters, backupSuffix: backupSuffix)
        } catch {
            throw ClientError(error)
        }
    }
}
