import ValiseClient
import ValiseDirectory
import ValiseCrypto

/// What `init` and `whoami` print about a device, as text or JSON.
struct DeviceReport: Encodable {
    struct Keystore: Encodable {
        let path: String
        var parameters: PasswordKDFParameters {
            PasswordKDFParameters(
                profile: PasswordKDFParameters.Profile(name: kdfProfile) ?? .standard,
                iterations: kdfIterations, memoryKiB: kdfMemoryKiB)
        }
        let kdfProfile: String
        let kdfIterations: UInt32
        let kdfMemoryKiB: UInt32
        let meetsStandard: Bool
    }

    let member: String
    let fingerprint: String
    let identityKey: String
    let transportKey: String
    let createdAt: String
    let keystore: Keystore
    let directory: DeviceStanding?
    let rotationPending: Bool

    init(identity: DeviceIdentity, path: String, parameters: PasswordKDFParameters, standing: DeviceStanding? = nil) {
        member = identity.memberName.value
        fingerprint = identity.fingerprint.description
        identityKey = Hex.encode(identity.identityKey.publicKey.bytes)
        transportKey = Hex.encode(identity.transportKey.publicKey.bytes)
        createdAt = Timestamp.rfc3339(identity.createdAt)
        keystore = Keystore(
            path: path, kdfProfile: parameters.profile.name,
            kdfIterations: parameters.iterations, kdfMemoryKiB: parameters.memoryKiB,
            meetsStandard: parameters.meetsStandard
        )
        directory = standing
        rotationPending = identity.pending != nil
    }

    var lines: [String] {
        [
            "member:        \(member)",
            "fingerprint:   \(fingerprint)",
            "identity key:  \(identityKey)",
            "transport key: \(transportKey)",
            "created:       \(createdAt)",
            "keystore:      \(keystore.path)",
        ] + (directory.map { ["directory:     \($0)"] } ?? []) + (directory?.homeRelay.map { ["home relay:    \($0)"] } ?? [])
    }

    /// A warning when the keystore's passphrase protection is below the standard profile,
    /// judged by its actual numbers, whatever its profile byte says.
    static func weakKeystoreWarning(_ parameters: PasswordKDFParameters) -> String? {
        guard !parameters.meetsStandard else { return nil }
        let standard = PasswordKDFParameters.standard
        let what = parameters.profile == .insecureTest
            ? "uses the insecure-test key-derivation profile (Argon2id t=\(parameters.iterations), m=\(parameters.memoryKiB) KiB), meant only for automated tests"
            : "uses key-derivation parameters (Argon2id t=\(parameters.iterations), m=\(parameters.memoryKiB) KiB) below the standard profile (t=\(standard.iterations), m=\(standard.memoryKiB) KiB)"
        return "this keystore \(what); anyone with a copy of the file can guess its passphrase far more quickly. Run 'valise passwd' to re-encrypt it with the standard profile."
    }
}
