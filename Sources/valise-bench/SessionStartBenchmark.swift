import CSodium
import Crypto
import Foundation
import ValiseCrypto
import ValiseSession

/// The initiator's cost of starting a session, as Messenger does it once it holds a checked
/// bundle: `Session.initiate` (PQXDH: both prekey signatures verified, the ephemeral key
/// made, DH1..DH4, the ML-KEM-1024 encapsulation, the key derivation, then the Double
/// Ratchet's first step), the first message encrypted with its initial header, and the
/// envelope sealed with HPKE X-Wing; against the fixed list of raw library calls the issue
/// names (`RawSessionStart.calls`), made in a straight line on keys decoded once.
struct SessionStartBenchmark {
    let iterations: Int
    let repetitions: Int

    /// Starts per slice: Valise and raw take turns, so that the shared machine's load falls
    /// on both alike.
    static let sliceCount = 10

    struct Result {
        var valise: [Double] = []
        var raw: [Double] = []
        var envelopeByteCount = 0
        /// Seconds per start of each step of Valise's path, and per call of the primitives
        /// it makes beyond the raw list: where the difference goes.
        var breakdown: [(String, Double)] = []
    }

    func run() -> Result {
        let valise = ValiseSessionStart()
        let raw = RawSessionStart(bundle: valise)
        var result = Result()
        result.envelopeByteCount = valise.start().count
        _ = round(valise, raw)  // unmeasured: page faults, lazy initialisation
        for _ in 0..<repetitions {
            let (valiseSeconds, rawSeconds) = round(valise, raw)
            result.valise.append(valiseSeconds)
            result.raw.append(rawSeconds)
        }
        result.breakdown = breakdown(valise)
        return result
    }

    /// One pass of each step on its own, and of the extra primitives, per call.
    private func breakdown(_ valise: ValiseSessionStart) -> [(String, Double)] {
        let n = max(SessionStartBenchmark.sliceCount, iterations / 4)
        func each(_ body: () -> Void) -> Double { Clock.threadCPUSeconds { for _ in 0..<n { body() } } / Double(n) }
        var session = try! Session.initiate(identity: valise.alice, bundle: valise.bundle)
        var message: [UInt8] = []
        let envelope = { SealedEnvelope(
            id: Random.bytes(count: SealedEnvelope.idByteCount), recipient: valise.bob.publicKey, precedence: 2, ttlClass: 2,
            sender: valise.alice.publicKey, senderHead: valise.head, timestamp: 1_800_000_000, sessionMessage: message) }
        let steps: [(String, Double)] = [
            ("initiate", each { session = try! Session.initiate(identity: valise.alice, bundle: valise.bundle) }),
            ("encryptFirstMessage", each { var copy = session; message = try! copy.encrypt(valise.text) }),
            ("seal", each { _ = try! envelope().sealed(to: valise.envelopeKey.publicKey, mailbox: valise.mailbox) }),
            ("x25519KeyGeneration", each { _ = AgreementPrivateKey() }),
            ("x25519", each { _ = try! valise.signedPrekey.sharedSecret(with: valise.oneTimePrekey.publicKey) }),
            ("ed25519ToX25519PublicKey", each { _ = try! valise.bob.publicKey.agreementPublicKey() }),
        ]
        return steps
    }

    private func round(_ valise: ValiseSessionStart, _ raw: RawSessionStart) -> (Double, Double) {
        var valiseSeconds = 0.0, rawSeconds = 0.0
        for slice in 0..<max(1, iterations / Self.sliceCount) {
            let valiseTurn = { valiseSeconds += Clock.threadCPUSeconds { for _ in 0..<Self.sliceCount { _ = valise.start() } } }
            let rawTurn = { rawSeconds += Clock.threadCPUSeconds { for _ in 0..<Self.sliceCount { raw.start() } } }
            if slice % 2 == 0 { valiseTurn(); rawTurn() } else { rawTurn(); valiseTurn() }
        }
        return (valiseSeconds, rawSeconds)
    }
}

/// Alice starting sessions with Bob's bundle (a one-time prekey of each kind, so DH4 is
/// computed and the KEM prekey is a one-time one): each start is a new session.
final class ValiseSessionStart {
    let alice = SigningKey()
    let bob = SigningKey()
    let bundle: PQXDH.PrekeyBundle
    let signedPrekey = AgreementPrivateKey()
    let oneTimePrekey = AgreementPrivateKey()
    let kemPrekey = MLKEM1024PrivateKey()
    let envelopeKey = XWingPrivateKey()
    let mailbox = "bob@nairobi"
    let text = MessageContent.text(String(repeating: "x", count: 250)).encoded
    let head = SealedEnvelope.DirectoryHead(sequence: 41, hash: Random.bytes(count: 32))

    init() {
        bundle = PQXDH.PrekeyBundle(
            identityKey: bob.publicKey, signedPrekey: signedPrekey.publicKey,
            signedPrekeySignature: PQXDH.signPrekey(signedPrekey.publicKey, with: bob), oneTimePrekey: oneTimePrekey.publicKey,
            kemPrekey: PQXDH.KEMPrekey(key: kemPrekey.publicKey, kind: .oneTime, signedBy: bob))
    }

    /// One session start: the sealed first envelope.
    func start() -> [UInt8] {
        var session = try! Session.initiate(identity: alice, bundle: bundle)
        let message = try! session.encrypt(text)
        let envelope = SealedEnvelope(
            id: Random.bytes(count: SealedEnvelope.idByteCount), recipient: bob.publicKey, precedence: 2, ttlClass: 2,
            sender: alice.publicKey, senderHead: head, timestamp: 1_800_000_000, sessionMessage: message)
        return try! envelope.sealed(to: envelopeKey.publicKey, mailbox: mailbox)
    }
}

/// The fixed list for the initiator, made with the same inputs as Valise's path:
/// 2 Ed25519 verifications (the signed prekey's and the KEM prekey's signatures over their
/// purpose-prefixed bytes), 4 X25519 (DH1..DH4), 1 ML-KEM-1024 encapsulation (the key
/// parsed from its bytes, as a bundle gives it), 1 HKDF-SHA-256 (extract and expand over
/// F ‖ DH1..DH4 ‖ SS) and 1 HPKE X-Wing seal of the same padded size and labels.
final class RawSessionStart {
    static let calls = """
        2x crypto_sign_verify_detached (signed prekey 32 B, KEM prekey 1 + 1568 B, each after its purpose) \
        + 4x crypto_scalarmult (DH1..DH4) + MLKEM1024.PublicKey(rawRepresentation:) + encapsulate \
        + 2x crypto_auth_hmacsha256 (HKDF extract and expand, 192 B in) \
        + XWingMLKEM768X25519.PublicKey(rawRepresentation:) + HPKE.Sender + seal (2,960 B, AD 31 B)
        """

    private let signedPrekeyMessage: [UInt8]
    private let signedPrekeySignature: [UInt8]
    private let kemPrekeyMessage: [UInt8]
    private let kemPrekeySignature: [UInt8]
    private let bobSigningKey: [UInt8]
    private let kemPrekey: [UInt8]
    private let envelopeKey: [UInt8]
    /// Alice's identity and ephemeral X25519 secrets, Bob's converted identity key, his
    /// signed and one-time prekeys: decoded once, as the raw list has no conversions.
    private var aliceIdentity = [UInt8](repeating: 0, count: 32)
    private var ephemeral = [UInt8](repeating: 0, count: 32)
    private var bobIdentity = [UInt8](repeating: 0, count: 32)
    private let signedPrekey: [UInt8]
    private let oneTimePrekey: [UInt8]
    private var material = [UInt8](repeating: 0xFF, count: 32 * 6)
    private var prk = [UInt8](repeating: 0, count: 32)
    private var okm = [UInt8](repeating: 0, count: 32)
    private let zeroSalt = [UInt8](repeating: 0, count: 32)
    private let expandInput = Array("Valise_PQXDH_X25519_SHA-256_ML-KEM-1024".utf8) + [1]
    private let padded = [UInt8](repeating: 0, count: RawEnds.paddedByteCount)
    private let labels = [UInt8](repeating: 7, count: RawEnds.labelsByteCount)

    init(bundle: ValiseSessionStart) {
        let b = bundle.bundle
        signedPrekeyMessage = Array("valise/v1/signed-prekey".utf8) + [0] + b.signedPrekey.bytes
        signedPrekeySignature = b.signedPrekeySignature.bytes
        kemPrekeyMessage = Array("valise/v1/kem-prekey".utf8) + [0, 1] + b.kemPrekey.key.bytes
        kemPrekeySignature = b.kemPrekey.signature.bytes
        bobSigningKey = b.identityKey.bytes
        kemPrekey = b.kemPrekey.key.bytes
        envelopeKey = bundle.envelopeKey.publicKey.bytes
        signedPrekey = b.signedPrekey.bytes
        oneTimePrekey = b.oneTimePrekey!.bytes
        randombytes_buf(&aliceIdentity, 32)
        randombytes_buf(&ephemeral, 32)
        precondition(crypto_sign_ed25519_pk_to_curve25519(&bobIdentity, bobSigningKey) == 0)
    }

    func start() {
        // The signatures are over other bytes than Valise's exact message layout only if the
        // purposes differ; they are checked for the cost, and must verify.
        let spkValid = crypto_sign_verify_detached(signedPrekeySignature, signedPrekeyMessage, UInt64(signedPrekeyMessage.count), bobSigningKey)
        let kemValid = crypto_sign_verify_detached(kemPrekeySignature, kemPrekeyMessage, UInt64(kemPrekeyMessage.count), bobSigningKey)
        precondition(spkValid == 0 && kemValid == 0, "valise-bench: the raw session start's signatures do not verify")
        material.withUnsafeMutableBufferPointer { m in
            let base = m.baseAddress!
            precondition(crypto_scalarmult(base + 32, aliceIdentity, signedPrekey) == 0)
            precondition(crypto_scalarmult(base + 64, ephemeral, bobIdentity) == 0)
            precondition(crypto_scalarmult(base + 96, ephemeral, signedPrekey) == 0)
            precondition(crypto_scalarmult(base + 128, ephemeral, oneTimePrekey) == 0)
        }
        let encapsulation = try! MLKEM1024.PublicKey(rawRepresentation: kemPrekey).encapsulate()
        encapsulation.sharedSecret.withUnsafeBytes { secret in
            material.withUnsafeMutableBufferPointer { m in (m.baseAddress! + 160).update(from: secret.bindMemory(to: UInt8.self).baseAddress!, count: 32) }
        }
        crypto_auth_hmacsha256(&prk, material, UInt64(material.count), zeroSalt)
        crypto_auth_hmacsha256(&okm, expandInput, UInt64(expandInput.count), prk)
        let recipient = try! XWingMLKEM768X25519.PublicKey(rawRepresentation: envelopeKey)
        var sender = try! HPKE.Sender(recipientKey: recipient, ciphersuite: RawEnds.suite, info: RawEnds.envelopeInfo)
        _ = try! sender.seal(padded, authenticating: labels)
        material.withUnsafeMutableBufferPointer { m in sodium_memzero(m.baseAddress! + 32, 160) }
    }
}
