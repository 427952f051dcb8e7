import Foundation
import ValiseCrypto
import ValiseSession
import ValiseStore
import ValiseWire

/// The KEM prekeys of one upload, checked: each parsed as an ML-KEM-1024 key and signed by
/// the device's identity key for its kind.
struct KEMPrekeyUpload: Sendable {
    let lastResort: StoredKEMPrekey
    let oneTime: [StoredKEMPrekey]
}

extension RelayRequestProcessor {
    /// Checks the upload's KEM prekeys before anything is stored: a key the directory's
    /// identity key did not sign, or that swift-crypto does not parse, is never handed out.
    static func checkKEMPrekeys(_ upload: WirePrekeyUpload, identity: SigningPublicKey) -> Result<KEMPrekeyUpload, RelayError> {
        guard upload.hasLastResortKemPrekey else {
            return .failure(.badRequest("a prekey upload needs a last-resort KEM prekey (relay protocol 3)"))
        }
        guard let lastResort = checked(upload.lastResortKemPrekey, kind: .lastResort, identity: identity) else {
            return .failure(.badRequest("the last-resort KEM prekey is not a signed ML-KEM-1024 key of this device"))
        }
        var oneTime: [StoredKEMPrekey] = []
        for prekey in upload.oneTimeKemPrekeys {
            guard let good = checked(prekey, kind: .oneTime, identity: identity) else {
                return .failure(.badRequest("a one-time KEM prekey is not a signed ML-KEM-1024 key of this device"))
            }
            oneTime.append(good)
        }
        return .success(KEMPrekeyUpload(lastResort: lastResort, oneTime: oneTime))
    }

    private static func checked(_ prekey: WireKEMPrekey, kind: PQXDH.KEMPrekeyKind, identity: SigningPublicKey) -> StoredKEMPrekey? {
        // Lengths first, so nothing larger than a key reaches the parser.
        guard prekey.key.count == PrekeyLimits.kemPrekeyByteCount, prekey.signature.count == Signature.byteCount,
              let key = try? MLKEM1024PublicKey(bytes: Array(prekey.key)), let signature = try? Signature(bytes: Array(prekey.signature)),
              PQXDH.KEMPrekey(key: key, kind: kind, signature: signature).isValid(for: identity)
        else { return nil }
        return StoredKEMPrekey(key: key.bytes, signature: signature.bytes)
    }
}
