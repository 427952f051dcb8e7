public import ValiseCrypto

/// Signal's PQXDH key agreement (https://signal.org/docs/specifications/pqxdh/), with the
/// parameters docs/PROTOCOL.md ("End-to-end") fixes: curve X25519, hash SHA-256, pqkem
/// ML-KEM-1024 (FIPS 203), identity keys in Ed25519 (DH through the Ed25519→X25519 map),
/// info `Valise_PQXDH_X25519_SHA-256_ML-KEM-1024`. The KEM's shared secret joins the DH
/// outputs in the key derivation, so SK needs ML-KEM broken as well as X25519; the
/// authentication stays classical (Ed25519). A pure computation: keys in, secrets out.
public enum PQXDH {
    /// HKDF's info for the shared secret: names the curve, the hash and the KEM.
    public static let info = Array("Valise_PQXDH_X25519_SHA-256_ML-KEM-1024".utf8)
    /// What the identity key signs a signed prekey for (`valise/v1/signed-prekey`, a zero
    /// byte, then the 32-byte key).
    public static let signedPrekeyPurpose = SignaturePurpose("signed-prekey")
    /// What the identity key signs a KEM prekey for: a purpose of its own, so that no
    /// signature over one kind of prekey can pass for the other.
    public static let kemPrekeyPurpose = SignaturePurpose("kem-prekey")
    /// The length of a KEM prekey's id (SHA-256 of its encapsulation key).
    public static let kemPrekeyIDByteCount = 32
    /// ML-KEM-1024's ciphertext length (FIPS 203: 1568).
    public static let kemCiphertextByteCount = MLKEM1024Scheme.parameters.ciphertextByteCount

    /// Whether a KEM prekey is used once (deleted by its owner on use) or is the last-resort
    /// one (used whenever no one-time KEM prekey may be handed out, kept until rotation).
    /// Signed with the key, so a relay cannot pass off one kind as the other.
    public enum KEMPrekeyKind: UInt8, Sendable {
        case oneTime = 1
        case lastResort = 2
    }

    /// An ML-KEM-1024 prekey as published: the key, its kind and the identity key's
    /// signature over `u8 kind ‖ key (1568)` with purpose `kem-prekey`.
    public struct KEMPrekey: Sendable, Equatable {
        public let key: MLKEM1024PublicKey
        public let kind: KEMPrekeyKind
        public let signature: Signature

        public init(key: MLKEM1024PublicKey, kind: KEMPrekeyKind, signature: Signature) {
            self.key = key
            self.kind = kind
            self.signature = signature
        }

        /// Signs `key` as a KEM prekey of this kind.
        public init(key: MLKEM1024PublicKey, kind: KEMPrekeyKind, signedBy identity: SigningKey) {
            self.init(key: key, kind: kind, signature: identity.signature(for: Self.signedBytes(key, kind), purpose: kemPrekeyPurpose))
        }

        /// The key's id: SHA-256 of its 1568 bytes, which the initial header names.
        public var id: [UInt8] { PQXDH.kemPrekeyID(key) }

        public func isValid(for identity: SigningPublicKey) -> Bool {
            identity.isValidSignature(signature, for: Self.signedBytes(key, kind), purpose: kemPrekeyPurpose)
        }

        static func signedBytes(_ key: MLKEM1024PublicKey, _ kind: KEMPrekeyKind) -> [UInt8] {
            [kind.rawValue] + key.bytes
        }
    }

    /// SHA-256 of an ML-KEM-1024 encapsulation key: how a header names the KEM prekey.
    public static func kemPrekeyID(_ key: MLKEM1024PublicKey) -> [UInt8] { SHA256.hash(key.bytes) }

    /// What a member publishes so that others can start sessions with it.
    public struct PrekeyBundle: Sendable, Equatable {
        public let identityKey: SigningPublicKey
        public let signedPrekey: AgreementPublicKey
        public let signedPrekeySignature: Signature
        /// One of the member's one-time prekeys, if any were left.
        public let oneTimePrekey: AgreementPublicKey?
        /// A one-time KEM prekey, or the last-resort one.
        public let kemPrekey: KEMPrekey

        public init(
            identityKey: SigningPublicKey, signedPrekey: AgreementPublicKey, signedPrekeySignature: Signature, oneTimePrekey: AgreementPublicKey?,
            kemPrekey: KEMPrekey
        ) {
            self.identityKey = identityKey
            self.signedPrekey = signedPrekey
            self.signedPrekeySignature = signedPrekeySignature
            self.oneTimePrekey = oneTimePrekey
            self.kemPrekey = kemPrekey
        }
    }

    /// The agreed secret and the associated data every message of the session authenticates.
    public struct Agreement: Sendable {
        /// SK: 32 bytes, the Double Ratchet's first root key.
        public let sharedSecret: SecretBytes
        /// AD = IK_A (32) ‖ IK_B (32) ‖ KEM prekey id (32) ‖ SHA-256(KEM ciphertext) (32).
        public let associatedData: [UInt8]
    }

    /// The associated data's length: four 32-byte fields.
    public static let associatedDataByteCount = 128

    /// The identity key's signature over a signed prekey.
    public static func signPrekey(_ prekey: AgreementPublicKey, with identity: SigningKey) -> Signature {
        identity.signature(for: prekey.bytes, purpose: signedPrekeyPurpose)
    }

    /// The initiator's side: checks both signatures in the bundle, agrees with a fresh
    /// ephemeral key (given here only by tests), encapsulates to the KEM prekey, and returns
    /// the header to send.
    public static func initiate(
        identity: SigningKey, bundle: PrekeyBundle, ephemeral: AgreementPrivateKey = AgreementPrivateKey()
    ) throws(SessionError) -> (agreement: Agreement, header: InitialHeader) {
        guard bundle.identityKey.isValidSignature(bundle.signedPrekeySignature, for: bundle.signedPrekey.bytes, purpose: signedPrekeyPurpose) else {
            throw .badPrekeySignature
        }
        guard bundle.kemPrekey.isValid(for: bundle.identityKey) else { throw .badKEMPrekeySignature }
        let encapsulation: KEMEncapsulation
        do {
            encapsulation = try bundle.kemPrekey.key.encapsulate()
        } catch {
            throw .weakKey
        }
        do {
            let ownIdentity = try identity.agreementPrivateKey()
            let theirIdentity = try bundle.identityKey.agreementPublicKey()
            var parts = [
                try ownIdentity.sharedSecret(with: bundle.signedPrekey),
                try ephemeral.sharedSecret(with: theirIdentity),
                try ephemeral.sharedSecret(with: bundle.signedPrekey),
            ]
            if let oneTime = bundle.oneTimePrekey { parts.append(try ephemeral.sharedSecret(with: oneTime)) }
            parts.append(encapsulation.sharedSecret)
            let header = InitialHeader(
                identityKey: identity.publicKey, ephemeralKey: ephemeral.publicKey, signedPrekey: bundle.signedPrekey,
                oneTimePrekey: bundle.oneTimePrekey, kemPrekeyID: bundle.kemPrekey.id, kemCiphertext: encapsulation.ciphertext)
            return (try agreement(parts, initiator: identity.publicKey, responder: bundle.identityKey, header: header), header)
        } catch {
            throw .weakKey
        }
    }

    /// The responder's side, with the private halves of the prekeys the header names (the
    /// caller looks them up and refuses unknown ones with `.unknownPrekey`).
    public static func respond(
        identity: SigningKey, signedPrekey: AgreementPrivateKey, oneTimePrekey: AgreementPrivateKey?, kemPrekey: MLKEM1024PrivateKey,
        header: InitialHeader
    ) throws(SessionError) -> Agreement {
        guard header.signedPrekey == signedPrekey.publicKey, header.oneTimePrekey == oneTimePrekey?.publicKey,
              header.kemPrekeyID == kemPrekeyID(kemPrekey.publicKey)
        else {
            throw .unknownPrekey
        }
        do {
            let ownIdentity = try identity.agreementPrivateKey()
            let theirIdentity = try header.identityKey.agreementPublicKey()
            var parts = [
                try signedPrekey.sharedSecret(with: theirIdentity),
                try ownIdentity.sharedSecret(with: header.ephemeralKey),
                try signedPrekey.sharedSecret(with: header.ephemeralKey),
            ]
            if let oneTimePrekey { parts.append(try oneTimePrekey.sharedSecret(with: header.ephemeralKey)) }
            // Implicit rejection: an altered ciphertext gives another secret, and the first
            // message's AEAD then fails.
            parts.append(try kemPrekey.decapsulate(header.kemCiphertext))
            return try agreement(parts, initiator: header.identityKey, responder: identity.publicKey, header: header)
        } catch {
            throw .weakKey
        }
    }

    /// SK = HKDF-SHA-256(salt = 32 zero bytes, IKM = 0xFF × 32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS, info, 32).
    static func agreement(
        _ parts: [SecretBytes], initiator: SigningPublicKey, responder: SigningPublicKey, header: InitialHeader
    ) throws(CryptoError) -> Agreement {
        let material = SecretBytes.concatenating([SecretBytes(copying: [UInt8](repeating: 0xFF, count: 32))] + parts)
        let secret = try HKDF<HMACSHA256>.deriveKey(
            inputKeyMaterial: material, salt: [UInt8](repeating: 0, count: 32), info: info, outputByteCount: 32)
        return Agreement(sharedSecret: secret, associatedData: associatedData(initiator: initiator, responder: responder, header: header))
    }

    /// IK_A ‖ IK_B ‖ KEM prekey id ‖ SHA-256(ct): binds the KEM exchange to every message,
    /// in a bounded length (the ciphertext itself would add 1568 bytes to every MAC input).
    static func associatedData(initiator: SigningPublicKey, responder: SigningPublicKey, header: InitialHeader) -> [UInt8] {
        initiator.bytes + responder.bytes + header.kemPrekeyID + SHA256.hash(header.kemCiphertext)
    }
}
