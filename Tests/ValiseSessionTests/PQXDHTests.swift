import Testing
import ValiseCrypto
@testable import ValiseSession

@Suite("PQXDH")
struct PQXDHTests {
    @Test("both sides agree on the secret and on AD = IK_A ‖ IK_B ‖ KEM prekey id ‖ SHA-256(ct), with and without a one-time prekey", arguments: [true, false])
    func agreement(oneTime: Bool) throws {
        var pair = SessionPair()
        let (agreement, header) = try PQXDH.initiate(identity: pair.alice, bundle: pair.bundle(oneTime: oneTime), ephemeral: pair.nextKey())
        let responded = try PQXDH.respond(
            identity: pair.bob, signedPrekey: pair.bobSignedPrekey, oneTimePrekey: oneTime ? pair.bobOneTimePrekey : nil,
            kemPrekey: pair.bobKEMPrekey, header: header)
        #expect(agreement.sharedSecret.constantTimeEquals(responded.sharedSecret))
        #expect(header.kemPrekeyID == SHA256.hash(pair.bobKEMPrekey.publicKey.bytes))
        #expect(header.kemCiphertext.count == 1568)
        #expect(agreement.associatedData == pair.alice.publicKey.bytes + pair.bob.publicKey.bytes + header.kemPrekeyID + SHA256.hash(header.kemCiphertext))
        #expect(agreement.associatedData.count == PQXDH.associatedDataByteCount)
        #expect(responded.associatedData == agreement.associatedData)
        #expect(header.oneTimePrekey == (oneTime ? pair.bobOneTimePrekey.publicKey : nil))
    }

    @Test("the KEM secret is part of SK: two starts with the same X25519 keys differ (fresh encapsulations)")
    func kemMatters() throws {
        var first = SessionPair(seed: 3)
        var second = SessionPair(seed: 3)
        let one = try PQXDH.initiate(identity: first.alice, bundle: first.bundle(), ephemeral: first.nextKey())
        let two = try PQXDH.initiate(identity: second.alice, bundle: second.bundle(), ephemeral: second.nextKey())
        #expect(one.header.ephemeralKey == two.header.ephemeralKey)
        #expect(!one.agreement.sharedSecret.constantTimeEquals(two.agreement.sharedSecret))
    }

    @Test("a tampered KEM ciphertext gives the responder another secret (implicit rejection), and another AD")
    func tamperedCiphertext() throws {
        var pair = SessionPair()
        let (agreement, header) = try PQXDH.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey())
        var ciphertext = header.kemCiphertext
        ciphertext[100] ^= 1
        let tampered = PQXDH.InitialHeader(
            identityKey: header.identityKey, ephemeralKey: header.ephemeralKey, signedPrekey: header.signedPrekey,
            oneTimePrekey: header.oneTimePrekey, kemPrekeyID: header.kemPrekeyID, kemCiphertext: ciphertext)
        let responded = try PQXDH.respond(
            identity: pair.bob, signedPrekey: pair.bobSignedPrekey, oneTimePrekey: pair.bobOneTimePrekey, kemPrekey: pair.bobKEMPrekey, header: tampered)
        #expect(!responded.sharedSecret.constantTimeEquals(agreement.sharedSecret))
        #expect(responded.associatedData != agreement.associatedData)
    }

    @Test("decapsulating with another KEM key (claiming the right id) gives another secret")
    func wrongKEMKey() throws {
        var pair = SessionPair()
        let (agreement, header) = try PQXDH.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey())
        #expect(throws: SessionError.unknownPrekey) {
            try PQXDH.respond(
                identity: pair.bob, signedPrekey: pair.bobSignedPrekey, oneTimePrekey: pair.bobOneTimePrekey, kemPrekey: pair.bobLastResortKEMPrekey, header: header)
        }
        let misnamed = PQXDH.InitialHeader(
            identityKey: header.identityKey, ephemeralKey: header.ephemeralKey, signedPrekey: header.signedPrekey,
            oneTimePrekey: header.oneTimePrekey, kemPrekeyID: pair.kemPrekey(lastResort: true).id, kemCiphertext: header.kemCiphertext)
        let responded = try PQXDH.respond(
            identity: pair.bob, signedPrekey: pair.bobSignedPrekey, oneTimePrekey: pair.bobOneTimePrekey, kemPrekey: pair.bobLastResortKEMPrekey, header: misnamed)
        #expect(!responded.sharedSecret.constantTimeEquals(agreement.sharedSecret))
    }

    @Test("a signed prekey signed by another key, or for another purpose, is refused")
    func badSignature() throws {
        var pair = SessionPair()
        let good = pair.bundle()
        let wrongSigner = PQXDH.PrekeyBundle(
            identityKey: good.identityKey, signedPrekey: good.signedPrekey,
            signedPrekeySignature: PQXDH.signPrekey(good.signedPrekey, with: pair.alice), oneTimePrekey: good.oneTimePrekey, kemPrekey: good.kemPrekey)
        #expect(throws: SessionError.badPrekeySignature) { try PQXDH.initiate(identity: pair.alice, bundle: wrongSigner, ephemeral: pair.nextKey()) }
        let otherPurpose = PQXDH.PrekeyBundle(
            identityKey: good.identityKey, signedPrekey: good.signedPrekey,
            signedPrekeySignature: pair.bob.signature(for: good.signedPrekey.bytes, purpose: SignaturePurpose("directory-entry")),
            oneTimePrekey: good.oneTimePrekey, kemPrekey: good.kemPrekey)
        #expect(throws: SessionError.badPrekeySignature) { try PQXDH.initiate(identity: pair.alice, bundle: otherPurpose, ephemeral: pair.nextKey()) }
    }

    @Test("a KEM prekey signed by another key, for the signed prekey's purpose, or for the other kind, is refused")
    func badKEMSignature() throws {
        var pair = SessionPair()
        let good = pair.bundle()
        let key = pair.bobKEMPrekey.publicKey
        let forgeries = [
            PQXDH.KEMPrekey(key: key, kind: .oneTime, signedBy: pair.alice),
            PQXDH.KEMPrekey(key: key, kind: .oneTime, signature: pair.bob.signature(for: [1] + key.bytes, purpose: PQXDH.signedPrekeyPurpose)),
            PQXDH.KEMPrekey(key: key, kind: .oneTime, signature: pair.bob.signature(for: key.bytes, purpose: PQXDH.kemPrekeyPurpose)),
            PQXDH.KEMPrekey(key: key, kind: .lastResort, signature: good.kemPrekey.signature),
        ]
        for forged in forgeries {
            let bundle = PQXDH.PrekeyBundle(
                identityKey: good.identityKey, signedPrekey: good.signedPrekey, signedPrekeySignature: good.signedPrekeySignature,
                oneTimePrekey: good.oneTimePrekey, kemPrekey: forged)
            #expect(throws: SessionError.badKEMPrekeySignature) { try PQXDH.initiate(identity: pair.alice, bundle: bundle, ephemeral: pair.nextKey()) }
        }
    }

    @Test("the responder refuses a header for prekeys it does not hold")
    func unknownPrekey() throws {
        var pair = SessionPair()
        let (_, header) = try PQXDH.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey())
        let other = pair.nextKey()
        #expect(throws: SessionError.unknownPrekey) {
            try PQXDH.respond(identity: pair.bob, signedPrekey: other, oneTimePrekey: pair.bobOneTimePrekey, kemPrekey: pair.bobKEMPrekey, header: header)
        }
        #expect(throws: SessionError.unknownPrekey) {
            try PQXDH.respond(identity: pair.bob, signedPrekey: pair.bobSignedPrekey, oneTimePrekey: nil, kemPrekey: pair.bobKEMPrekey, header: header)
        }
    }

    @Test("a small-order ephemeral key is refused, not agreed on")
    func smallOrder() throws {
        var pair = SessionPair()
        let (_, header) = try PQXDH.initiate(identity: pair.alice, bundle: pair.bundle(), ephemeral: pair.nextKey())
        // The all-zero point has order 1 (RFC 7748).
        let forged = PQXDH.InitialHeader(
            identityKey: header.identityKey, ephemeralKey: try AgreementPublicKey(bytes: [UInt8](repeating: 0, count: 32)),
            signedPrekey: header.signedPrekey, oneTimePrekey: header.oneTimePrekey, kemPrekeyID: header.kemPrekeyID, kemCiphertext: header.kemCiphertext)
        #expect(throws: SessionError.weakKey) {
            try PQXDH.respond(identity: pair.bob, signedPrekey: pair.bobSignedPrekey, oneTimePrekey: pair.bobOneTimePrekey, kemPrekey: pair.bobKEMPrekey, header: forged)
        }
    }

    @Test("the initial header round-trips, and every wrong length or flag is malformed", arguments: [true, false])
    func headerEncoding(oneTime: Bool) throws {
        var pair = SessionPair()
        let (_, header) = try PQXDH.initiate(identity: pair.alice, bundle: pair.bundle(oneTime: oneTime), ephemeral: pair.nextKey())
        let bytes = header.encoded
        #expect(bytes.count == (oneTime ? 1729 : 1697))
        #expect(bytes[0] == (oneTime ? 1 : 0))
        #expect(Array(bytes.suffix(1568)) == header.kemCiphertext)
        #expect(Array(bytes.dropLast(1568).suffix(32)) == header.kemPrekeyID)
        #expect(try PQXDH.InitialHeader(decoding: bytes) == header)
        for length in [0, 1, 97, 129, 1696, 1698, 1728, 1730] where length != bytes.count {
            let altered = Array((bytes + [UInt8](repeating: 7, count: 40)).prefix(length))
            #expect(throws: SessionError.malformed("")) { try PQXDH.InitialHeader(decoding: altered) }
        }
        var flagged = bytes
        flagged[0] |= 2
        #expect(throws: SessionError.malformed("")) { try PQXDH.InitialHeader(decoding: flagged) }
    }
}
