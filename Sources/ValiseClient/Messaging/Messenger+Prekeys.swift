import Foundation
public import ValiseCrypto
public import ValiseDirectory
public import ValiseSession
import ValiseStore

extension Messenger {
    /// Signed prekeys and envelope keys are replaced weekly (and at once after a rotation
    /// of the device's identity key).
    public static let signedPrekeyLifetime: UInt64 = 7 * 86_400
    /// Replaced prekeys and envelope keys are kept this long for messages already in
    /// flight: a sender may use an envelope key for 7 days after fetching it, and the
    /// relay may then hold the envelope for the longest TTL (30 days), plus a day.
    public static let retiredPrekeyRetention: UInt64 = 38 * 86_400
    /// The relay hands out one-time prekeys until they are used, however old: the device
    /// keeps their private halves until then, but at most this many (the oldest go first:
    /// the relay hands out the oldest first, so those are the ones long since fetched).
    public static let maximumOneTimePrekeysHeld = 1000
    /// The relay is topped up to this many one-time prekeys when it holds fewer than
    /// `oneTimePrekeyLowWater`.
    public static let oneTimePrekeyTarget = 100
    public static let oneTimePrekeyLowWater = 25
    /// One-time KEM prekeys: the same rules, within the relay's own bound for them.
    public static let maximumOneTimeKEMPrekeysHeld = 1000
    /// One-time KEM prekeys per upload (about 41 KiB with their signatures), so that an
    /// upload with everything else stays under 64 KiB, a message limit an operator may set.
    public static let maximumKEMPrekeysPerUpload = 25

    /// What to upload: the current signed prekey and envelope key with their signatures,
    /// and new one-time prekeys (their private halves are already committed).
    public struct PrekeyUpload: Sendable {
        public let signedPrekey: AgreementPublicKey
        public let signedPrekeySignature: Signature
        public let envelopeKey: XWingPublicKey
        public let envelopeKeySignature: Signature
        public let oneTimePrekeys: [AgreementPublicKey]
        /// The current last-resort KEM prekey (rotated with the signed prekey) and new
        /// one-time ones, each signed for its kind.
        public let lastResortKEMPrekey: PQXDH.KEMPrekey
        public let oneTimeKEMPrekeys: [PQXDH.KEMPrekey]
        /// Whether the signed prekey and envelope key were replaced just now.
        public let rotated: Bool
    }

    /// Makes sure a current signed prekey and envelope key exist (made by this identity,
    /// younger than a week) with a last-resort KEM prekey of the same age, deletes expired
    /// old ones, and makes `newOneTimePrekeys` and `newOneTimeKEMPrekeys` more. Everything
    /// private is committed before the caller uploads anything public.
    public func preparePrekeys(newOneTimePrekeys: Int, newOneTimeKEMPrekeys: Int = 0, now: UInt64) throws(ClientError) -> PrekeyUpload {
        let identityKey = identity.identityKey
        var deleted = false
        let upload = try storeOperation("prepare prekeys") { tx -> PrekeyUpload in
            var signed = try tx.prekeys(.signed).first { $0.retiredAt == nil }
            var envelope = try tx.prekeys(.xwingEnvelope).first { $0.retiredAt == nil }
            var lastResort = try tx.prekeys(.kemLastResort).first { $0.retiredAt == nil }
            let madeBy = try tx.meta("prekeys-identity")
            var rotated = false
            if signed == nil || envelope == nil || lastResort == nil || now >= signed!.createdAt &+ Self.signedPrekeyLifetime
                || madeBy != identityKey.publicKey.bytes {
                for old in [signed, envelope, lastResort].compactMap({ $0 }) { try tx.retirePrekey(old.publicKey, now: now) }
                let newLastResort = MLKEM1024PrivateKey()
                try tx.addPrekey(PQXDH.kemPrekeyID(newLastResort.publicKey), kind: .kemLastResort, privateKey: newLastResort.seed, now: now)
                lastResort = try tx.prekey(PQXDH.kemPrekeyID(newLastResort.publicKey), kind: .kemLastResort)
                let newSigned = AgreementPrivateKey()
                let newEnvelope = XWingPrivateKey()
                try tx.addPrekey(newSigned.publicKey.bytes, kind: .signed, privateKey: newSigned.rawRepresentation, now: now)
                try tx.addPrekey(newEnvelope.publicKey.bytes, kind: .xwingEnvelope, privateKey: newEnvelope.seed, now: now)
                try tx.setMeta("prekeys-identity", identityKey.publicKey.bytes)
                signed = try tx.prekey(newSigned.publicKey.bytes, kind: .signed)
                envelope = try tx.prekey(newEnvelope.publicKey.bytes, kind: .xwingEnvelope)
                rotated = true
            }
            for kind in [PrekeyKind.signed, .xwingEnvelope, .kemLastResort] {
                for old in try tx.prekeys(kind) where old.retiredAt.map({ now >= $0 &+ Self.retiredPrekeyRetention }) ?? false {
                    try tx.deletePrekey(old.publicKey)
                    deleted = true
                }
            }
            // X25519 envelope keys open nothing this version reads.
            for old in try tx.prekeys(.envelope) {
                try tx.deletePrekey(old.publicKey)
                deleted = true
            }
            for old in try tx.prekeys(.oneTime).dropFirst(max(0, Self.maximumOneTimePrekeysHeld - newOneTimePrekeys)) {
                try tx.deletePrekey(old.publicKey)
                deleted = true
            }
            for old in try tx.prekeys(.kemOneTime).dropFirst(max(0, Self.maximumOneTimeKEMPrekeysHeld - newOneTimeKEMPrekeys)) {
                try tx.deletePrekey(old.publicKey)
                deleted = true
            }
            var oneTime: [AgreementPublicKey] = []
            for _ in 0..<max(0, newOneTimePrekeys) {
                let key = AgreementPrivateKey()
                try tx.addPrekey(key.publicKey.bytes, kind: .oneTime, privateKey: key.rawRepresentation, now: now)
                oneTime.append(key.publicKey)
            }
            var oneTimeKEM: [PQXDH.KEMPrekey] = []
            for _ in 0..<max(0, newOneTimeKEMPrekeys) {
                let key = MLKEM1024PrivateKey()
                try tx.addPrekey(PQXDH.kemPrekeyID(key.publicKey), kind: .kemOneTime, privateKey: key.seed, now: now)
                oneTimeKEM.append(PQXDH.KEMPrekey(key: key.publicKey, kind: .oneTime, signedBy: identityKey))
            }
            // The store keeps the seed; the public key is derived from it again to upload.
            let lastResortKey = try MLKEM1024PrivateKey(seed: lastResort!.privateKey).publicKey
            let spk = try AgreementPublicKey(bytes: signed!.publicKey)
            let ek = try XWingPublicKey(bytes: envelope!.publicKey)
            return PrekeyUpload(
                signedPrekey: spk, signedPrekeySignature: PQXDH.signPrekey(spk, with: identityKey),
                envelopeKey: ek, envelopeKeySignature: SealedEnvelope.signEnvelopeKey(ek, with: identityKey),
                oneTimePrekeys: oneTime, lastResortKEMPrekey: PQXDH.KEMPrekey(key: lastResortKey, kind: .lastResort, signedBy: identityKey),
                oneTimeKEMPrekeys: oneTimeKEM, rotated: rotated)
        }
        // Deleted private keys must not survive in the log.
        if deleted { store.checkpoint() }
        return upload
    }

    /// How many one-time prekeys to add when the relay says it holds `held`.
    public static func oneTimePrekeysToAdd(relayHolds held: Int) -> Int {
        held < oneTimePrekeyLowWater ? max(0, min(oneTimePrekeyTarget, PrekeyLimits.maximumOneTimePrekeys) - held) : 0
    }

    /// How many one-time KEM prekeys to add when the relay says it holds `held`.
    public static func oneTimeKEMPrekeysToAdd(relayHolds held: Int) -> Int {
        held < oneTimePrekeyLowWater ? max(0, min(oneTimePrekeyTarget, PrekeyLimits.maximumOneTimeKEMPrekeys) - held) : 0
    }

    // MARK: Other members' keys

    /// What a recipient's keys need before a message can be encrypted for them.
    public enum KeysNeeded: Sendable, Equatable {
        /// Nothing: the session and its envelope key are current.
        case none
        /// The member's current envelope key only (`envelope_key_only`): the session is there.
        case envelopeKey
        /// A whole bundle (taking one of the member's one-time prekeys): a session must start.
        case bundle
    }

    /// A member's keys as the relay handed them out, already checked against the directory.
    public struct Bundle: Sendable {
        public let identityKey: SigningPublicKey
        /// The keys to start a session with; nil when only the envelope key was fetched.
        public let pqxdh: PQXDH.PrekeyBundle?
        public let envelopeKey: XWingPublicKey
    }

    /// Checks a fetched bundle: the identity key must be the member's in this device's
    /// directory (not merely the relay's word), and every prekey signed by it, the KEM
    /// prekey for the kind the relay says it is.
    public func checkBundle(member: MemberName, identityKey: [UInt8], signedPrekey: [UInt8], signedPrekeySignature: [UInt8],
                            envelopeKey: [UInt8], envelopeKeySignature: [UInt8], oneTimePrekey: [UInt8],
                            kemPrekey: [UInt8], kemPrekeySignature: [UInt8], kemPrekeyLastResort: Bool) throws(ClientError) -> Bundle {
        let envelope = try checkEnvelopeKey(member: member, identityKey: identityKey, envelopeKey: envelopeKey, envelopeKeySignature: envelopeKeySignature)
        guard let spk = try? AgreementPublicKey(bytes: signedPrekey), let spkSignature = try? Signature(bytes: signedPrekeySignature),
              envelope.identityKey.isValidSignature(spkSignature, for: spk.bytes, purpose: PQXDH.signedPrekeyPurpose)
        else {
            throw ClientError(kind: .verification, code: "bad-prekey-signature", message: "the prekey bundle for \(member) is not signed by their identity key (tampered, or a relay fault); nothing was sent")
        }
        guard !spk.isSmallOrder else {
            throw ClientError(kind: .verification, code: "bad-bundle", message: "the prekey bundle for \(member) holds an unusable (small-order) key; nothing was sent")
        }
        var otpk: AgreementPublicKey?
        if !oneTimePrekey.isEmpty {
            guard let key = try? AgreementPublicKey(bytes: oneTimePrekey), !key.isSmallOrder else {
                throw ClientError(kind: .verification, code: "bad-bundle", message: "the prekey bundle for \(member) has a malformed one-time prekey")
            }
            otpk = key
        }
        let kem = try checkKEMPrekey(
            member: member, identity: envelope.identityKey, key: kemPrekey, signature: kemPrekeySignature, lastResort: kemPrekeyLastResort)
        return Bundle(
            identityKey: envelope.identityKey,
            pqxdh: PQXDH.PrekeyBundle(
                identityKey: envelope.identityKey, signedPrekey: spk, signedPrekeySignature: spkSignature, oneTimePrekey: otpk, kemPrekey: kem),
            envelopeKey: envelope.envelopeKey)
    }

    /// A bundle's KEM prekey: present (a relay or peer of protocol 2 has none, and then no
    /// session can start), an ML-KEM-1024 key, signed by the identity key for its kind.
    private func checkKEMPrekey(
        member: MemberName, identity: SigningPublicKey, key: [UInt8], signature: [UInt8], lastResort: Bool
    ) throws(ClientError) -> PQXDH.KEMPrekey {
        guard !key.isEmpty else {
            throw ClientError(kind: .verification, code: "no-kem-prekey", message: "the prekey bundle for \(member) has no post-quantum (ML-KEM) prekey, so no session can start with them; they must sync with an up-to-date valise first")
        }
        guard let parsed = try? MLKEM1024PublicKey(bytes: key), let parsedSignature = try? Signature(bytes: signature) else {
            throw ClientError(kind: .verification, code: "bad-bundle", message: "the prekey bundle for \(member) has a malformed ML-KEM prekey; nothing was sent")
        }
        let prekey = PQXDH.KEMPrekey(key: parsed, kind: lastResort ? .lastResort : .oneTime, signature: parsedSignature)
        guard prekey.isValid(for: identity) else {
            throw ClientError(kind: .verification, code: "bad-prekey-signature", message: "the ML-KEM prekey in the bundle for \(member) is not signed by their identity key (tampered, or a relay fault); nothing was sent")
        }
        return prekey
    }

    /// Checks a fetched envelope key (a fetch with `envelope_key_only`): the identity key
    /// must be the member's in this device's directory, and the envelope key signed by it.
    public func checkEnvelopeKey(member: MemberName, identityKey: [UInt8], envelopeKey: [UInt8], envelopeKeySignature: [UInt8]) throws(ClientError) -> Bundle {
        guard let listed = state.members[member], listed.isActive else {
            throw ClientError(kind: .usage, code: "unknown-recipient", message: "\(member) is not an active member of the directory")
        }
        guard let identity = try? SigningPublicKey(bytes: identityKey), identity == listed.identityKey else {
            throw ClientError(kind: .verification, code: "bundle-identity", message: "the relay's prekey bundle for \(member) has an identity key the directory does not list for them; nothing was sent")
        }
        guard let ek = try? XWingPublicKey(bytes: envelopeKey) else {
            throw ClientError(kind: .verification, code: "bad-bundle", message: "the prekey bundle for \(member) has no usable X-Wing envelope key (a relay fault, or an older Valise); nothing was sent")
        }
        guard let ekSignature = try? Signature(bytes: envelopeKeySignature),
              SealedEnvelope.isValidEnvelopeKey(ek, signature: ekSignature, identity: identity)
        else {
            throw ClientError(kind: .verification, code: "bad-prekey-signature", message: "the prekey bundle for \(member) is not signed by their identity key (tampered, or a relay fault); nothing was sent")
        }
        return Bundle(identityKey: identity, pqxdh: nil, envelopeKey: ek)
    }
}
