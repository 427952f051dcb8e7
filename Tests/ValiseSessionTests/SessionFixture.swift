import Testing
import ValiseCrypto
import ValiseTestSupport
@testable import ValiseSession

/// Two devices with fixed keys: alice (initiator) and bob (responder, with a signed prekey
/// and one one-time prekey).
struct SessionPair {
    let alice: SigningKey
    let bob: SigningKey
    let bobSignedPrekey: AgreementPrivateKey
    let bobOneTimePrekey: AgreementPrivateKey
    var generator: SplitMix64

    init(seed: UInt64 = 1) {
        var generator = SplitMix64(seed: seed)
        alice = try! SigningKey(seed: SecretBytes(copying: generator.bytes(32)))
        bob = try! SigningKey(seed: SecretBytes(copying: generator.bytes(32)))
        bobSignedPrekey = try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: generator.bytes(32)))
        bobOneTimePrekey = try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: generator.bytes(32)))
        self.generator = generator
    }

    mutating func nextKey() -> AgreementPrivateKey {
        try! AgreementPrivateKey(rawRepresentation: SecretBytes(copying: generator.bytes(32)))
    }

    func bundle(oneTime: Bool = true) -> X3DH.PrekeyBundle {
        X3DH.PrekeyBundle(
            identityKey: bob.publicKey, signedPrekey: bobSignedPrekey.publicKey,
            signedPrekeySignature: X3DH.signPrekey(bobSignedPrekey.publicKey, with: bob),
            oneTimePrekey: oneTime ? bobOneTimePrekey.publicKey : nil)
    }

    /// Both ends of a session, alice having sent nothing yet.
    mutating func sessions(oneTime: Bool = true) throws -> (alice: DoubleRatchet, bob: DoubleRatchet, header: X3DH.InitialHeader) {
        let (agreement, header) = try X3DH.initiate(identity: alice, bundle: bundle(oneTime: oneTime), ephemeral: nextKey())
        let bobAgreement = try X3DH.respond(
            identity: bob, signedPrekey: bobSignedPrekey, oneTimePrekey: oneTime ? bobOneTimePrekey : nil, header: header)
        let aliceSession = try DoubleRatchet(initiatorWith: agreement, remoteRatchetKey: bobSignedPrekey.publicKey, ratchetKey: nextKey())
        return (aliceSession, DoubleRatchet(responderWith: bobAgreement, signedPrekey: bobSignedPrekey), header)
    }
}

func text(_ s: String) -> [UInt8] { Array(s.utf8) }
