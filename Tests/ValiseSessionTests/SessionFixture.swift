import Testing
import ValiseCrypto
import ValiseTestSupport
@testable import ValiseSession

/// Two devices with fixed keys: alice (initiator) and bob (responder, with a signed prekey,
/// one one-time prekey, a one-time KEM prekey and a last-resort KEM prekey).
struct SessionPair {
    let alice: SigningKey
    let bob: SigningKey
    let bobSignedPrekey: AgreementPrivateKey
    let bobOneTimePrekey: AgreementPrivateKey
    let bobKEMPrekey: MLKEM1024PrivateKey
    let bobLastResortKEMPrekey: MLKEM1024PrivateKey
    var generator: SplitMix64

    init(seed: UInt64 = 1) {
        var generator = SplitMix64(seed: seed)
        alice = try! SigningKey(seed: SecretBytes(copying: generator.bytes(32)))
        bob = try! SigningKey(seed: SecretBytes(copying: generator.bytes(32)))
        bobSignedPrekey = try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: generator.bytes(32)))
        bobOneTimePrekey = try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: generator.bytes(32)))
        bobKEMPrekey = try! MLKEM1024PrivateKey(seed: SecretBytes(copying: generator.bytes(64)))
        bobLastResortKEMPrekey = try! MLKEM1024PrivateKey(seed: SecretBytes(copying: generator.bytes(64)))
        self.generator = generator
    }

    mutating func nextKey() -> AgreementPrivateKey {
        try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: generator.bytes(32)))
    }

    /// The KEM prekey a bundle carries: the one-time one, or the last-resort one.
    func kemPrekey(lastResort: Bool = false) -> PQXDH.KEMPrekey {
        lastResort
            ? PQXDH.KEMPrekey(key: bobLastResortKEMPrekey.publicKey, kind: .lastResort, signedBy: bob)
            : PQXDH.KEMPrekey(key: bobKEMPrekey.publicKey, kind: .oneTime, signedBy: bob)
    }

    func bundle(oneTime: Bool = true, lastResort: Bool = false) -> PQXDH.PrekeyBundle {
        PQXDH.PrekeyBundle(
            identityKey: bob.publicKey, signedPrekey: bobSignedPrekey.publicKey,
            signedPrekeySignature: PQXDH.signPrekey(bobSignedPrekey.publicKey, with: bob),
            oneTimePrekey: oneTime ? bobOneTimePrekey.publicKey : nil, kemPrekey: kemPrekey(lastResort: lastResort))
    }

    /// Both ends of a session, alice having sent nothing yet.
    mutating func sessions(oneTime: Bool = true) throws -> (alice: DoubleRatchet, bob: DoubleRatchet, header: PQXDH.InitialHeader) {
        let (agreement, header) = try PQXDH.initiate(identity: alice, bundle: bundle(oneTime: oneTime), ephemeral: nextKey())
        let bobAgreement = try PQXDH.respond(
            identity: bob, signedPrekey: bobSignedPrekey, oneTimePrekey: oneTime ? bobOneTimePrekey : nil, kemPrekey: bobKEMPrekey, header: header)
        let aliceSession = try DoubleRatchet(initiatorWith: agreement, remoteRatchetKey: bobSignedPrekey.publicKey, ratchetKey: nextKey())
        return (aliceSession, DoubleRatchet(responderWith: bobAgreement, signedPrekey: bobSignedPrekey), header)
    }
}

func text(_ s: String) -> [UInt8] { Array(s.utf8) }
