import Testing
import ValiseCrypto
@testable import ValiseSession

@Suite("X3DH")
struct X3DHTests {
    @Test("both sides agree on the secret and on AD = IK_A ‖ IK_B, with and without a one-time prekey", arguments: [true, false])
    func agreement(oneTime: Bool) throws {
        var pair = SessionPair()
        let (agreement, header) = try X3DH.initiate(identity: pair.alice, bundle: pair.bundle(oneTime: oneTime), ephemeral: pair.nextKey())
        let responded = try X3DH.respond(
            identity: pair.bob, signedPrekey: pair.bobSignedPrekey, oneTimePrekey: oneTime ? pair.bobOneTimePrekey : nil, header: header)
        #expect(agreement.sharedSecret.constantTimeEquals(responded.sharedSecret))
        #expect(agreement.associatedData == pair.alice.publicKey.bytes + pair.bob.publicKey.bytes)
        #expect(responded.associatedData == agreement.associatedData)
        #expect(header.oneTimePrekey == (oneTime ? pair.bobOneTimePrekey.publicKey : nil))
    }

    @Test("the one-time prekey changes the secret: DH4 is part of it")
    func oneTimeMatters() throws {
        var first = SessionPair(seed: 3)
        var second = SessionPair(seed: 3)
        let with = try X3DH.initiate(identity: first.alice, bundle: first.bundle(oneTime: true), ephemeral: first.nextKey())
        let without = try X3DH.initiate(identity: second.alice, bundle: second.bundle(oneTime: false), ephemeral: second.nextKey())
        #expect(!with.agreement.sharedSecret.constantTimeEquals(without.agreement.sharedSecret))
    }

    @Test("a signed prekey signed by another key, or for another purpose, is refused")
    func badSignature() throws {
        var pair = SessionPair()
        let good = pair.bundle()
        let wrongSigner = X3DH.PrekeyBundle(
            identityKey: good.identityKey, signedPrekey: good.signedPrekey,
            signedPrekeySignature: X3DH.signPrekey(good.signedPrekey, with: pair.alice), oneTimePrekey: good.oneTimePrekey)
        #expect(throws: SessionError.badPrekeySignature) { try X3DH.initiate(identity: pair.alice, bundle: wrongSigner, ephemeral: pair.nextKey()) }
        let otherPurpose = X3DH.PrekeyBundle(
            identityKey: good.identityKey, signedPrekey: good.signedPrekey,
            signedPrekeySignature: pair.bob.signature(for: good.signedPrekey.bytes, purpose: SignaturePurpose("directory-entry")),
            oneTimePrekey: good.oneTimePrekey)
        #expect(throws: SessionError.badPrekeySignature) { try X3DH.initiate(identity: pair.alice, bundle: otherPurpose, ephemeral: pair.nextKey()) }
    }

    @Test("the responder refuses a header for prekeys it does not hold")
    func unknownPrekey() throws {
        var pair = SessionPair()
        let (_, header) = try X3DH.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey())
        let other = pair.nextKey()
        #expect(throws: SessionError.unknownPrekey) {
            try X3DH.respond(identity: pair.bob, signedPrekey: other, oneTimePrekey: pair.bobOneTimePrekey, header: header)
        }
        #expect(throws: SessionError.unknownPrekey) {
            try X3DH.respond(identity: pair.bob, signedPrekey: pair.bobSignedPrekey, oneTimePrekey: nil, header: header)
        }
    }

    @Test("a small-order ephemeral key is refused, not agreed on")
    func smallOrder() throws {
        var pair = SessionPair()
        let (_, header) = try X3DH.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey())
        // The all-zero point has order 1 (RFC 7748).
        let forged = X3DH.InitialHeader(
            identityKey: header.identityKey, ephemeralKey: try AgreementPublicKey(bytes: [UInt8](repeating: 0, count: 32)),
            signedPrekey: header.signedPrekey, oneTimePrekey: header.oneTimePrekey)
        #expect(throws: SessionError.weakKey) {
            try X3DH.respond(identity: pair.bob, signedPrekey: pair.bobSignedPrekey, oneTimePrekey: pair.bobOneTimePrekey, header: forged)
        }
    }

    @Test("the initial header round-trips, and every wrong length or flag is malformed", arguments: [true, false])
    func headerEncoding(oneTime: Bool) throws {
        var pair = SessionPair()
        let (_, header) = try X3DH.initiate(identity: pair.alice, bundle: pair.bundle(oneTime: oneTime), ephemeral: pair.nextKey())
        let bytes = header.encoded
        #expect(bytes.count == (oneTime ? 129 : 97))
        #expect(bytes[0] == (oneTime ? 1 : 0))
        #expect(try X3DH.InitialHeader(decoding: bytes) == header)
        for length in [0, 1, 96, 98, 128, 130] where length != bytes.count {
            let altered = Array((bytes + [UInt8](repeating: 7, count: 40)).prefix(length))
            #expect(throws: SessionError.malformed("")) { try X3DH.InitialHeader(decoding: altered) }
        }
        var flagged = bytes
        flagged[0] |= 2
        #expect(throws: SessionError.malformed("")) { try X3DH.InitialHeader(decoding: flagged) }
    }
}
