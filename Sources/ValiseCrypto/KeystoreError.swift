/// Why a keystore file could not be read or unlocked. Messages never contain key material or
/// the passphrase; the caller adds the file's path.
public struct KeystoreError: CodedError {
    public let code: String
    public let message: String

    init(code: String, message: String) {
        self.code = code
        self.message = message
    }


    public static let notAKeystore = KeystoreError(
        code: "not-a-keystore", message: "not a Valise keystore (wrong magic bytes)"
    )
    public static func unsupportedVersion(_ version: UInt8) -> KeystoreError {
        KeystoreError(
            code: "unsupported-version",
            message: "keystore format version \(version) is not supported by this version of Valise"
        )
    }
    public static let truncated = KeystoreError(
        code: "truncated", message: "keystore is truncated (shorter than its header says)"
    )
    /// Damage: the checksum does not match (the reason says what was seen).
    public static func corrupted(_ reason: String) -> KeystoreError {
        KeystoreError(code: "corrupted", message: "keystore is corrupted (\(reason))")
    }
    public static let corrupted = corrupted("its checksum does not match")
    public static let tooLarge = KeystoreError(
        code: "too-large", message: "keystore is larger than any valid keystore"
    )
    public static func unsupportedParameters(_ reason: String) -> KeystoreError {
        KeystoreError(code: "unsupported-parameters", message: "keystore asks for unsupported key derivation: \(reason)")
    }
    public static func wrongContents(expected: String, found: String) -> KeystoreError {
        KeystoreError(code: "wrong-contents", message: "keystore holds \(found) keys, expected \(expected) keys")
    }
    public static let wrongPassphrase = KeystoreError(
        code: "wrong-passphrase", message: "wrong passphrase"
    )
    public static func keyDerivationFailed(_ error: CryptoError) -> KeystoreError {
        KeystoreError(code: "key-derivation-failed", message: error.message)
    }
    public static func invalidPayload(_ reason: String) -> KeystoreError {
        KeystoreError(code: "invalid-payload", message: "keystore contents are invalid: \(reason)")
    }
}
