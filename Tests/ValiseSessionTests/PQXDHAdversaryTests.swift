import Testing
import ValiseCrypto
@testable import ValiseSession

/// The recording adversary of shared/DESIGN.md: it stored a session's first message and,
/// later, learned every X25519 private key involved (as a quantum computer would give it).
/// Without the ML-KEM-1024 private key it must still not get SK nor read the message; with
/// it (the positive control) it must, which shows the test's adversary computes right.
@Suite("PQXDH: the recording adversary")
struct PQXDHAdversaryTests {
    struct Adversary {
        /// Bob's public identity key, from the directory.
        let bob: SigningPublicKey
        let aliceIdentity: AgreementPrivateKey
        let bobIdentity: AgreementPrivateKey
        let signedPrekey: AgreementPrivateKey
        let oneTimePrekey: AgreementPrivateKey?
        let ephemeral: AgreementPrivateKey

        /// DH1..DH4 from the private keys, exactly as both parties compute them.
        func dh(_ header: PQXDH.InitialHeader) throws -> [SecretBytes] {
            var parts = [
                try aliceIdentity.sharedSecret(with: header.signedPrekey),
                try ephemeral.sharedSecret(with: bobIdentity.publicKey),
                try ephemeral.sharedSecret(with: header.signedPrekey),
            ]
            if let oneTimePrekey { parts.append(try oneTimePrekey.sharedSecret(with: header.ephemeralKey)) }
            return parts
        }

        /// Its best guess at SK from the DH outputs and a stand-in for the KEM secret.
        func secret(_ header: PQXDH.InitialHeader, kemSecret: SecretBytes?) throws -> SecretBytes {
            let parts = try dh(header) + (kemSecret.map { [$0] } ?? [])
            let material = SecretBytes.concatenating([SecretBytes(copying: [UInt8](repeating: 0xFF, count: 32))] + parts)
            return try HKDF<HMACSHA256>.deriveKey(inputKeyMaterial: material, salt: [UInt8](repeating: 0, count: 32), info: PQXDH.info, outputByteCount: 32)
        }

        /// Tries to read the first message as bob would with SK = `secret`.
        func read(_ message: RatchetMessage, header: PQXDH.InitialHeader, secret: SecretBytes) -> [UInt8]? {
            let ad = PQXDH.associatedData(initiator: header.identityKey, responder: bob, header: header)
            var ratchet = DoubleRatchet(responderWith: PQXDH.Agreement(sharedSecret: secret, associatedData: ad), signedPrekey: signedPrekey)
            return try? ratchet.decrypt(message, newRatchetKey: { AgreementPrivateKey() })
        }
    }

    @Test("every X25519 private key is not enough for SK or the first message; with the ML-KEM private key too, both follow", arguments: [true, false])
    func recordingAdversary(oneTime: Bool) throws {
        var pair = SessionPair(seed: 31)
        let ephemeral = pair.nextKey()
        let (agreement, header) = try PQXDH.initiate(identity: pair.alice, bundle: pair.bundle(oneTime: oneTime), ephemeral: ephemeral)
        var alice = try DoubleRatchet(initiatorWith: agreement, remoteRatchetKey: pair.bobSignedPrekey.publicKey, ratchetKey: pair.nextKey())
        let plaintext = text("the ambassador's instructions")
        let message = try alice.encrypt(plaintext)

        let adversary = Adversary(
            bob: pair.bob.publicKey, aliceIdentity: try pair.alice.agreementPrivateKey(), bobIdentity: try pair.bob.agreementPrivateKey(), signedPrekey: pair.bobSignedPrekey,
            oneTimePrekey: oneTime ? pair.bobOneTimePrekey : nil, ephemeral: ephemeral)
        #expect(try adversary.dh(header).count == (oneTime ? 4 : 3))

        // Without the KEM secret: X3DH's derivation, or the KEM secret guessed as zeros or at random.
        for guess in [nil, SecretBytes(copying: [UInt8](repeating: 0, count: 32)), SecretBytes.random(count: 32)] {
            let secret = try adversary.secret(header, kemSecret: guess)
            #expect(!secret.constantTimeEquals(agreement.sharedSecret))
            #expect(adversary.read(message, header: header, secret: secret) == nil)
        }

        // Positive control: the ML-KEM-1024 private key opens the ciphertext, and all follows.
        let kemSecret = try pair.bobKEMPrekey.decapsulate(header.kemCiphertext)
        let secret = try adversary.secret(header, kemSecret: kemSecret)
        #expect(secret.constantTimeEquals(agreement.sharedSecret))
        #expect(adversary.read(message, header: header, secret: secret) == plaintext)
    }
}
