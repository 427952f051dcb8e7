import Foundation
public import ValiseCrypto
import ValiseSession
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

    /// What to upload: the current signed prekey and envelope key with their signatures,
    /// and new one-time prekeys (their private halves are already committed).
    public struct PrekeyUpload: Sendable {
        public let signedPrekey: AgreementPublicKey
        public let signedPrekeySignature: Signature
        public let envelopeKey: AgreementPublicKey
        public let envelopeKeySignature: Signature
        public let oneTimePrekeys: [AgreementPublicKey]
        /// Whether the signed prekey and envelope key were replaced just now.
        public let rotated: Bool
    }

    /// Makes sure a current signed prekey and envelope key exist (made by this identity,
    /// younger than a week), deletes expired old ones, and makes `newOneTimePrekeys` more.
    /// Everything private is committed before the caller uploads anything public.
    public func preparePrekeys(newOneTimePrekeys: Int, now: UInt64) throws(ClientError) -> PrekeyUpload {
        let identityKey = identity.identityKey
        var deleted = false
        let upload = try storeOperation("prepare prekeys") { tx -> PrekeyUpload in
            var signed = try tx.prekeys(.signed).first { $0.retiredAt == nil }
            var envelope = try tx.prekeys(.envelope).first { $0.retiredAt == nil }
            let madeBy = try tx.meta("prekeys-identity")
            var rotated = false
            if signed == nil || envelope == nil || now >= signed!.createdAt &+ Self.signedPrekeyLifetime || madeBy != identityKey.publicKey.bytes {
                for old in [signed, envelope].compactMap({ $0 }) { try tx.retirePrekey(old.publicKey, now: now) }
                let newSigned = AgreementPrivateKey()
                let newEnvelope = AgreementPrivateKey()
                try tx.addPrekey(newSigned.publicKey.bytes, kind: .signed, privateKey: newSigned.rawRepresentation, now: now)
                try tx.addPrekey(newEnvelope.publicKey.bytes, kind: .envelope, privateKey: newEnvelope.rawRepresentation, now: now)
                try tx.setMeta("prekeys-identity", identityKey.publicKey.bytes)
                signed = try tx.prekey(newSigned.publicKey.bytes, kind: .signed)
                envelope = try tx.prekey(newEnvelope.publicKey.bytes, kind: .envelope)
                rotated = true
            }
            for kind in [PrekeyKind.signed, .envelope] {
                for old in try tx.prekeys(kind) where old.retiredAt.map({ now >= $0 &+ Self.retiredPrekeyRetention }) ?? false {
                    try tx.deletePrekey(old.publicKey)
                    deleted = true
                }
            }
            for old in try tx.prekeys(.oneTime).dropFirst(max(0, Self.maximumOneTimePrekeysHeld - newOneTimePrekeys)) {
                try tx.deletePrekey(old.publicKey)
                deleted = true
            }
            var oneTime: [AgreementPublicKey] = []
            for _ in 0..<max(0, newOneTimePrekeys) {
                let key = AgreementPrivateKey()
                try tx.addPrekey(key.publicKey.bytes, kind: .oneTime, privateKey: key.rawRepresentation, now: now)
                oneTime.append(key.publicKey)
            }
            let spk = try AgreementPublicKey(bytes: signed!.publicKey)
            let ek = try AgreementPublicKey(bytes: envelope!.publicKey)
            return PrekeyUpload(
                signedPrekey: spk, signedPrekeySignature: X3DH.signPrekey(spk, with: identityKey),
                envelopeKey: ek, envelopeKeySignature: SealedEnvelope.signEnvelopeKey(ek, with: identityKey),
                oneTimePrekeys: oneTime, rotated: rotated)
        }
        // Deleted private keys must not survive in the log.
        if deleted { store.checkpoint() }
        return upload
    }

    /// How many one-time prekeys to add when the relay says it holds `held`.
    public static func oneTimePrekeysToAdd(relayHolds held: Int) -> Int {
        held < oneTimePrekeyLowWater ? max(0, min(oneTimePrekeyTarget, PrekeyLimits.maximumOneTimePrekeys) - held) : 0
    }
}
