public import ValiseCrypto

/// Signal's X3DH key agreement (https://signal.org/docs/specifications/x3dh/), with the
/// parameters docs/PROTOCOL.md ("End-to-end") fixes: curve X25519, hash SHA-256, identity
/// keys in Ed25519 (DH through the Ed25519→X25519 map), info `Valise_X3DH_v1`. A pure
/// computation: keys in, secrets out, no I/O, no clock.
public enum X3DH {
    /// HKDF's info for the shared secret.
    public static let info = Array("Valise_X3DH_v1".utf8)
    /// What the identity key signs a signed prekey for (`valise/v1/signed-prekey`, a zero
    /// byte, then the 32-byte key).
    public static let signedPrekeyPurpose = SignaturePurpose("signed-prekey")

    /// What a member publishes so that others can start sessions with it.
    public struct PrekeyBundle: Sendable, Equatable {
        public let identityKey: SigningPublicKey
        public let signedPrekey: AgreementPublicKey
        public let signedPrekeySignature: Signature
        /// One of the member's one-time prekeys, if any were left.
        public let oneTimePrekey: AgreementPublicKey?

        public init(identityKey: SigningPublicKey, signedPrekey: AgreementPublicKey, signedPrekeySignature: Signature, oneTimePrekey: AgreementPublicKey?) {
            self.identityKey = identityKey
            self.signedPrekey = signedPrekey
            self.signedPrekeySignature = signedPrekeySignature
            self.oneTimePrekey = oneTimePrekey
        }
    }

    /// What the initiator sends with its first messages so that the responder can compute
    /// the same secret.
    public struct InitialHeader: Sendable, Equatable {
        public let identityKey: SigningPublicKey
        public let ephemeralKey: AgreementPublicKey
        public let signedPrekey: AgreementPublicKey
        public let oneTimePrekey: AgreementPublicKey?

        public init(identityKey: SigningPublicKey, ephemeralKey: AgreementPublicKey, signedPrekey: AgreementPublicKey, oneTimePrekey: AgreementPublicKey?) {
            self.identityKey = identityKey
            self.ephemeralKey = ephemeralKey
            self.signedPrekey = signedPrekey
            self.oneTimePrekey = oneTimePrekey
        }

        /// The encoded header's length for its first (flags) byte: 97, or 129 with a
        /// one-time prekey.
        public static func encodedByteCount(flags: UInt8) -> Int { flags & 1 == 1 ? 129 : 97 }

        /// SPK ‖ EK: what a responder records to refuse a replayed start of a session that
        /// used no one-time prekey.
        public var replayKey: [UInt8] { signedPrekey.bytes + ephemeralKey.bytes }

        /// `u8 flags (bit 0: a one-time prekey follows) ‖ IK (32, Ed25519) ‖ EK (32) ‖ SPK (32) [‖ OPK (32)]`.
        public var encoded: [UInt8] {
            var writer = ByteWriter(capacity: Self.encodedByteCount(flags: 1))
            writer.write(UInt8(oneTimePrekey == nil ? 0 : 1))
            writer.write(identityKey.bytes)
            writer.write(ephemeralKey.bytes)
            writer.write(signedPrekey.bytes)
            if let oneTimePrekey { writer.write(oneTimePrekey.bytes) }
            return writer.bytes
        }

        public init(decoding bytes: [UInt8]) throws(SessionError) {
            do {
                self = try ByteReader.read(bytes, context: "X3DH initial header") { (reader, _) throws(FormatError) in
                    let flags = try reader.readUInt8()
                    guard flags & ~1 == 0 else { throw .invalid("X3DH initial header", "unknown flags") }
                    let identity = try reader.readBytes(32)
                    let ephemeral = try reader.readBytes(32)
                    let signed = try reader.readBytes(32)
                    let oneTime = flags & 1 == 1 ? try reader.readBytes(32) : nil
                    try reader.expectEnd()
                    do {
                        return InitialHeader(
                            identityKey: try SigningPublicKey(bytes: identity), ephemeralKey: try AgreementPublicKey(bytes: ephemeral),
                            signedPrekey: try AgreementPublicKey(bytes: signed), oneTimePrekey: try oneTime.map { (b) throws(CryptoError) in try AgreementPublicKey(bytes: b) })
                    } catch {
                        throw .invalid("X3DH initial header", "a key is not usable")
                    }
                }
            } catch {
                throw .malformed("the X3DH initial header")
            }
        }
    }

    /// The agreed secret and the associated data every message of the session authenticates.
    public struct Agreement: Sendable {
        /// SK: 32 bytes, the Double Ratchet's first root key.
        public let sharedSecret: SecretBytes
        /// AD = initiator's identity key (32) ‖ responder's identity key (32).
        public let associatedData: [UInt8]
    }

    /// The identity key's signature over a signed prekey.
    public static func signPrekey(_ prekey: AgreementPublicKey, with identity: SigningKey) -> Signature {
        identity.signature(for: prekey.bytes, purpose: signedPrekeyPurpose)
    }

    /// The initiator's side: checks the bundle's signature, agrees with a fresh ephemeral
    /// key (given here only by tests), and returns the header to send.
    public static func initiate(
        identity: SigningKey, bundle: PrekeyBundle, ephemeral: AgreementPrivateKey = AgreementPrivateKey()
    ) throws(SessionError) -> (agreement: Agreement, header: InitialHeader) {
        guard bundle.identityKey.isValidSignature(bundle.signedPrekeySignature, for: bundle.signedPrekey.bytes, purpose: signedPrekeyPurpose) else {
            throw .badPrekeySignature
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
            let header = InitialHeader(
                identityKey: identity.publicKey, ephemeralKey: ephemeral.publicKey, signedPrekey: bundle.signedPrekey,
                oneTimePrekey: bundle.oneTimePrekey)
            return (try agreement(parts, initiator: identity.publicKey, responder: bundle.identityKey), header)
        } catch {
            throw .weakKey
        }
    }

    /// The responder's side, with the private halves of the prekeys the header names (the
    /// caller looks them up and refuses unknown ones with `.unknownPrekey`).
    public static func respond(
        identity: SigningKey, signedPrekey: AgreementPrivateKey, oneTimePrekey: AgreementPrivateKey?, header: InitialHeader
    ) throws(SessionError) -> Agreement {
        guard header.signedPrekey == signedPrekey.publicKey, header.oneTimePrekey == oneTimePrekey?.publicKey else {
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
            return try agreement(parts, initiator: header.identityKey, responder: identity.publicKey)
        } catch {
            throw .weakKey
        }
    }

    /// SK = HKDF-SHA-256(salt = 32 zero bytes, IKM = 0xFF × 32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], info, 32).
    private static func agreement(_ parts: [SecretBytes], initiator: SigningPublicKey, responder: SigningPublicKey) throws(CryptoError) -> Agreement {
        let material = SecretBytes.concatenating([SecretBytes(copying: [UInt8](repeating: 0xFF, count: 32))] + parts)
        let secret = try HKDF<HMACSHA256>.deriveKey(
            inputKeyMaterial: material, salt: [UInt8](repeating: 0, count: 32), info: info, outputByteCount: 32)
        return Agreement(sharedSecret: secret, associatedData: initiator.bytes + responder.bytes)
    }
}
