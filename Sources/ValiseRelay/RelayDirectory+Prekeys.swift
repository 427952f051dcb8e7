import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore

extension RelayDirectory {
    /// Which stored prekeys each mailbox's member's identity key signed, as the directory
    /// stands when the check runs (not when it was asked for: a later rotation counts too).
    /// A mailbox without an active member owns nothing. The signed bytes and purposes are
    /// the ones an upload is checked with (`RelayRequestProcessor.handlePrekeyUpload`).
    func prekeyOwnership(checkingKEMPrekeys: Bool) -> PrekeyOwnership {
        let identity: @Sendable (Mailbox) -> SigningPublicKey? = { [self] mailbox in
            guard let name = try? MemberName(mailbox.name), let member = snapshot.state.members[name], member.isActive else { return nil }
            return member.identityKey
        }
        let signedPrekeys: @Sendable (Mailbox, StoredPrekeys) -> Bool = { mailbox, prekeys in
            guard let key = identity(mailbox), let signature = try? Signature(bytes: prekeys.signedPrekeySignature) else { return false }
            return key.isValidSignature(signature, for: prekeys.signedPrekey, purpose: PQXDH.signedPrekeyPurpose)
        }
        guard checkingKEMPrekeys else { return PrekeyOwnership(signedPrekeys: signedPrekeys, kemPrekey: nil) }
        let kemPrekey: @Sendable (Mailbox, StoredKEMPrekey, Bool) -> Bool = { mailbox, prekey, lastResort in
            guard let key = identity(mailbox), let parsed = try? MLKEM1024PublicKey(bytes: prekey.key),
                  let signature = try? Signature(bytes: prekey.signature) else { return false }
            let kind: PQXDH.KEMPrekeyKind = lastResort ? .lastResort : .oneTime
            return PQXDH.KEMPrekey(key: parsed, kind: kind, signature: signature).isValid(for: key)
        }
        return PrekeyOwnership(signedPrekeys: signedPrekeys, kemPrekey: kemPrekey)
    }
}
