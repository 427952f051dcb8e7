import ValiseCrypto
import ValiseSession

/// Fixed keys and a session made once, so that every run of a target starts from the same
/// state (libFuzzer needs runs that depend only on the input).
enum Fixed {
    static let now: UInt64 = 1_767_225_600
    static let id = [UInt8](repeating: 7, count: SealedEnvelope.idByteCount)

    static func key(_ byte: UInt8) -> AgreementPrivateKey {
        try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: [UInt8](repeating: byte, count: 32)))
    }

    static func signing(_ byte: UInt8) -> SigningKey {
        try! SigningKey(seed: SecretBytes(copying: [UInt8](repeating: byte, count: 32)))
    }

    static let relayKey = key(1)
    static let envelopeKey = try! XWingPrivateKey(seed: SecretBytes(copying: [UInt8](repeating: 2, count: 32)))
    /// The labels envelopes are delivered with (bob's mailbox, a week asked and applied).
    static let labels = SealedEnvelope.Labels(mailbox: "bob@nairobi", id: id, precedence: 0, ttlClass: 3)
    static let alice = signing(3)
    static let bob = signing(4)
    static let signedPrekey = key(5)
    static let oneTimePrekey = key(6)
    static let kemPrekey = try! MLKEM1024PrivateKey(seed: SecretBytes(copying: [UInt8](repeating: 11, count: 64)))

    static var bobPrekeys: Session.Prekeys {
        Session.Prekeys(
            signedPrekey: { $0 == signedPrekey.publicKey ? signedPrekey : nil },
            oneTimePrekey: { $0 == oneTimePrekey.publicKey ? oneTimePrekey : nil },
            kemPrekey: { $0 == PQXDH.kemPrekeyID(kemPrekey.publicKey) ? (kemPrekey, .oneTime) : nil },
            seenBefore: { _ in false })
    }

    /// Alice's first three messages to bob (each still carries the initial header). The
    /// KEM encapsulation is random (swift-crypto has no deterministic one), so these bytes
    /// differ between processes but not between the runs of one.
    static let aliceMessages: [[UInt8]] = {
        let bundle = PQXDH.PrekeyBundle(
            identityKey: bob.publicKey, signedPrekey: signedPrekey.publicKey,
            signedPrekeySignature: PQXDH.signPrekey(signedPrekey.publicKey, with: bob), oneTimePrekey: oneTimePrekey.publicKey,
            kemPrekey: PQXDH.KEMPrekey(key: kemPrekey.publicKey, kind: .oneTime, signedBy: bob))
        var aliceSession = try! Session.initiate(identity: alice, bundle: bundle, ephemeral: key(8), ratchetKey: key(9))
        return ["hello", "second", "third"].map { try! aliceSession.encrypt(MessageContent.text($0).encoded) }
    }()

    /// Bob's side of the session, after alice's first message.
    static let bobSession: Session = {
        try! Session.accept(aliceMessages[0], identity: bob, prekeys: bobPrekeys, newRatchetKey: { key(10) }).session
    }()
}
