import Testing
import ValiseCrypto
import ValiseTestSupport
@testable import ValiseSession

/// Bytes from the network: random and mutated inputs to every parser of this module must
/// be refused with a SessionError, never crash, and never change a session.
@Suite("Sessions: hostile input")
struct SessionHostileInputTests {
    @Test("random bytes and mutations of valid messages are refused by every entry point, and the session still works")
    func randomAndMutated() throws {
        var pair = SessionPair(seed: 21)
        var alice = try Session.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey(), ratchetKey: pair.nextKey())
        let first = try alice.encrypt(text("first"))
        let prekeys = Session.Prekeys(
            signedPrekey: { [pair] in $0 == pair.bobSignedPrekey.publicKey ? pair.bobSignedPrekey : nil },
            oneTimePrekey: { [pair] in $0 == pair.bobOneTimePrekey.publicKey ? pair.bobOneTimePrekey : nil },
            kemPrekey: { [pair] in $0 == pair.kemPrekey().id ? (pair.bobKEMPrekey, .oneTime) : nil },
            seenBefore: { _ in false })
        var bob = try Session.accept(first, identity: pair.bob, prekeys: prekeys, newRatchetKey: { pair.nextKey() }).session
        let second = try alice.encrypt(text("second"))
        let envelopeKey = XWingPrivateKey()
        let labels = SealedEnvelope.Labels(mailbox: "bob@nairobi", id: [UInt8](repeating: 1, count: 16), precedence: 0, ttlClass: 1)
        let sealed = try SealedEnvelope(
            id: [UInt8](repeating: 1, count: 16), recipient: pair.bob.publicKey, precedence: 0, ttlClass: 1, sender: pair.alice.publicKey,
            senderHead: .init(sequence: 1, hash: [UInt8](repeating: 2, count: 32)), timestamp: 0, sessionMessage: second
        ).sealed(to: envelopeKey.publicKey, mailbox: labels.mailbox)

        var generator = SplitMix64(seed: 0xBAD)
        var inputs: [[UInt8]] = []
        for _ in 0..<300 { inputs.append(generator.bytes(generator.int(in: 0...300))) }
        for source in [first, second] {
            for _ in 0..<300 {
                var mutated = source
                switch generator.int(in: 0...2) {
                case 0: mutated[generator.int(in: 0...(mutated.count - 1))] ^= UInt8(generator.int(in: 1...255))
                case 1: mutated = Array(mutated.prefix(generator.int(in: 0...(mutated.count - 1))))
                default: mutated += generator.bytes(generator.int(in: 1...40))
                }
                inputs.append(mutated)
            }
        }
        for input in inputs {
            let before = bob
            do {
                _ = try bob.decrypt(input, newRatchetKey: { pair.nextKey() })
                Issue.record("a mutated message decrypted")
            } catch {
                bob = before
            }
            #expect(throws: (any Error).self) { try Session.accept(input, identity: pair.bob, prekeys: prekeys, newRatchetKey: { pair.nextKey() }) }
            _ = try? RatchetMessage(decoding: input)
            _ = try? PQXDH.InitialHeader(decoding: input)
            #expect(throws: SessionError.self) {
                try SealedEnvelope.open(input, with: envelopeKey, labels: labels, appliedTTLClass: 1, recipients: [pair.bob.publicKey])
            }
        }
        // Nothing above moved the session: the real second message still decrypts.
        #expect(try bob.decrypt(second, newRatchetKey: { pair.nextKey() }) == text("second"))
        let opened = try SealedEnvelope.open(sealed, with: envelopeKey, labels: labels, appliedTTLClass: 1, recipients: [pair.bob.publicKey])
        #expect(opened.sessionMessage == second)
    }
}
