import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore

/// The directory's word on keys and members, the local store's integrity, and rotation.
extension MessengerTests {
    // MARK: Directory rules

    @Test("a prekey bundle not signed by the member's directory key is refused")
    func badBundles() throws {
        let world = try MessagingWorld()
        let (alice, bob, carol) = (world.alice, world.bob, world.carol)
        let upload = try bob.messenger.preparePrekeys(newOneTimePrekeys: 1, newOneTimeKEMPrekeys: 1, now: world.now)
        func check(
            identity: SigningPublicKey, spk: Signature, ek: Signature, oneTime: [UInt8]? = nil, kem: PQXDH.KEMPrekey? = nil, kemLastResort: Bool? = nil
        ) throws {
            let kem = kem ?? upload.oneTimeKEMPrekeys[0]
            _ = try alice.messenger.checkBundle(
                member: bob.name, identityKey: identity.bytes, signedPrekey: upload.signedPrekey.bytes, signedPrekeySignature: spk.bytes,
                envelopeKey: upload.envelopeKey.bytes, envelopeKeySignature: ek.bytes, oneTimePrekey: oneTime ?? upload.oneTimePrekeys[0].bytes,
                kemPrekey: kem.key.bytes, kemPrekeySignature: kem.signature.bytes, kemPrekeyLastResort: kemLastResort ?? (kem.kind == .lastResort))
        }
        let carolKey = carol.identity.identityKey
        let spkByCarol = PQXDH.signPrekey(upload.signedPrekey, with: carolKey)
        let ekByCarol = SealedEnvelope.signEnvelopeKey(upload.envelopeKey, with: carolKey)
        // Bob's own signature, but made for the other purpose, must not pass either.
        let crossed = bob.identity.identityKey.signature(for: upload.envelopeKey.bytes, purpose: PQXDH.signedPrekeyPurpose)
        let cases: [(identity: SigningPublicKey, spk: Signature, ek: Signature, code: String)] = [
            (bob.publicKey, spkByCarol, upload.envelopeKeySignature, "bad-prekey-signature"),
            (bob.publicKey, upload.signedPrekeySignature, ekByCarol, "bad-prekey-signature"),
            (bob.publicKey, upload.signedPrekeySignature, crossed, "bad-prekey-signature"),
            (carol.publicKey, spkByCarol, ekByCarol, "bundle-identity"),
            (carol.publicKey, upload.signedPrekeySignature, upload.envelopeKeySignature, "bundle-identity"),
        ]
        for (identity, spk, ek, code) in cases {
            let error = #expect(throws: ClientError.self) { try check(identity: identity, spk: spk, ek: ek) }
            #expect(error?.code == code)
            #expect(error?.kind == .verification)
        }
        let malformed = #expect(throws: ClientError.self) {
            try check(identity: bob.publicKey, spk: upload.signedPrekeySignature, ek: upload.envelopeKeySignature, oneTime: [1, 2, 3])
        }
        #expect(malformed?.code == "bad-bundle")
        // An X25519 envelope key (what an older Valise published) is not an X-Wing one.
        let x25519 = AgreementPrivateKey().publicKey
        let old = #expect(throws: ClientError.self) {
            _ = try alice.messenger.checkEnvelopeKey(
                member: bob.name, identityKey: bob.publicKey.bytes, envelopeKey: x25519.bytes,
                envelopeKeySignature: bob.identity.identityKey.signature(for: x25519.bytes, purpose: SignaturePurpose("envelope-key")).bytes)
        }
        #expect(old?.code == "bad-bundle")
        #expect(throws: Never.self) { try check(identity: bob.publicKey, spk: upload.signedPrekeySignature, ek: upload.envelopeKeySignature) }
        #expect(throws: Never.self) {
            try check(identity: bob.publicKey, spk: upload.signedPrekeySignature, ek: upload.envelopeKeySignature, kem: upload.lastResortKEMPrekey)
        }
        // The KEM prekey: signed by another key, claimed to be of the other kind, or missing.
        let kem = upload.oneTimeKEMPrekeys[0]
        let kemCases: [(PQXDH.KEMPrekey, Bool?, String)] = [
            (PQXDH.KEMPrekey(key: kem.key, kind: .oneTime, signedBy: carolKey), nil, "bad-prekey-signature"),
            (kem, true, "bad-prekey-signature"),
            (upload.lastResortKEMPrekey, false, "bad-prekey-signature"),
        ]
        for (prekey, lastResort, code) in kemCases {
            let error = #expect(throws: ClientError.self) {
                try check(identity: bob.publicKey, spk: upload.signedPrekeySignature, ek: upload.envelopeKeySignature, kem: prekey, kemLastResort: lastResort)
            }
            #expect(error?.code == code)
        }
        let missing = #expect(throws: ClientError.self) {
            _ = try alice.messenger.checkBundle(
                member: bob.name, identityKey: bob.publicKey.bytes, signedPrekey: upload.signedPrekey.bytes,
                signedPrekeySignature: upload.signedPrekeySignature.bytes, envelopeKey: upload.envelopeKey.bytes,
                envelopeKeySignature: upload.envelopeKeySignature.bytes, oneTimePrekey: [], kemPrekey: [], kemPrekeySignature: [], kemPrekeyLastResort: false)
        }
        #expect(missing?.code == "no-kem-prekey" && missing?.kind == .verification)
        let garbled = #expect(throws: ClientError.self) {
            _ = try alice.messenger.checkBundle(
                member: bob.name, identityKey: bob.publicKey.bytes, signedPrekey: upload.signedPrekey.bytes,
                signedPrekeySignature: upload.signedPrekeySignature.bytes, envelopeKey: upload.envelopeKey.bytes,
                envelopeKeySignature: upload.envelopeKeySignature.bytes, oneTimePrekey: [], kemPrekey: Array(kem.key.bytes.prefix(1000)),
                kemPrekeySignature: kem.signature.bytes, kemPrekeyLastResort: false)
        }
        #expect(garbled?.code == "bad-bundle")
    }

    @Test("a message from a member revoked after sending is refused and nothing is stored", arguments: ["member", "key"])
    func revokedSender(target: String) throws {
        let world = try MessagingWorld()
        let carol = world.carol
        let envelope = try world.send("sent before my revocation", from: carol, to: world.bob)[0]
        world.append(.revoke(Revocation(target: target == "member" ? .member(carol.name) : .identityKey(carol.publicKey), reason: "device lost")))
        try world.open([world.bob])

        #expect(try world.deliver(envelope).refusalCode == "revoked-sender")
        #expect(try world.bob.storedCount() == (0, 0))
        #expect(try world.deliver(envelope).isRepeated)
    }

    struct ComposeCase: Sendable, CustomTestStringConvertible {
        let text: String
        let to: [String]
        let code: String
        var testDescription: String { "\(code) \(to)" }
    }

    @Test("compose refuses and writes nothing", arguments: [
        ComposeCase(text: "hello", to: ["dave@paris"], code: "unknown-recipient"),
        ComposeCase(text: "hello", to: ["bob@geneva", "dave@paris"], code: "unknown-recipient"),
        ComposeCase(text: "hello", to: ["carol@geneva"], code: "revoked-recipient"),
        ComposeCase(text: "hello", to: ["bob@geneva", "carol@geneva"], code: "revoked-recipient"),
        ComposeCase(text: "hello", to: ["alice@jakarta"], code: "self-recipient"),
        ComposeCase(text: "", to: ["bob@geneva"], code: "empty-message"),
        ComposeCase(text: String(repeating: "x", count: MessageContent.maximumTextByteCount + 1), to: ["bob@geneva"], code: "message-too-long"),
        ComposeCase(text: "hello", to: [], code: "no-recipient"),
        ComposeCase(text: "hello", to: ["bob@geneva", "bob@geneva"], code: "repeated-recipient"),
    ])
    func composeRefusals(_ refused: ComposeCase) throws {
        let world = try MessagingWorld()
        world.revoke(world.carol)
        try world.open([world.alice])
        let recipients = try refused.to.map { try MemberName($0) }
        let error = #expect(throws: ClientError.self) {
            try world.alice.messenger.compose(refused.text, to: recipients, precedence: .routine, ttl: .day, now: world.now)
        }
        #expect(error?.code == refused.code)
        #expect(try world.alice.messenger.sent().isEmpty)
        #expect(try world.alice.storedCount() == (0, 0))
    }

    // MARK: The local store

    @Test("a store opened under another key is refused as damaged, and left as it was")
    func storeUnderAnotherKey() throws {
        let world = try MessagingWorld()
        _ = try world.deliver(try world.send("kept", from: world.alice, to: world.bob)[0])
        let bob = world.bob
        bob.messenger.close()

        let storeError = #expect(throws: StoreError.self) { try LocalStore(path: bob.home.messageStorePath, key: SymmetricKey()) }
        #expect(storeError?.kind == .corrupt)
        let stranger = DeviceIdentity(memberName: bob.name, createdAt: bob.identity.createdAt, current: bob.identity.current, storeKey: SymmetricKey())
        expectDamaged { try Messenger(home: bob.home, identity: stranger, directory: bob.messenger.directory, receiptDelay: 0...0) }

        try bob.reopen()
        #expect(try bob.messenger.inbox(unreadOnly: false).map(\.text) == ["kept"])
    }

    @Test("a damaged value in the store is reported as damage, never shown or refused")
    func damagedValues() throws {
        let world = try MessagingWorld()
        let envelopes = try world.send("first", "second", from: world.alice, to: world.bob)
        let first = try #require(try world.deliver(envelopes[0]).message)
        let bob = world.bob

        // A damaged session: the next envelope throws (so it stays on the relay for a later
        // try) instead of being refused and acknowledged.
        try bob.damageStore(table: "correspondent", key: "handle", column: "data")
        expectDamaged { try bob.messenger.receive(envelopes[1].delivered, now: world.now) }
        expectDamaged { try bob.messenger.compose("hello", to: [world.alice.name], precedence: .routine, ttl: .day, now: world.now) }
        #expect(try bob.messenger.inbox(unreadOnly: false).map(\.text) == ["first"])

        // A damaged message body: listing and reading say so rather than show anything.
        try bob.damageStore(table: "inbox", key: "id", column: "data")
        expectDamaged { try bob.messenger.inbox(unreadOnly: false) }
        expectDamaged { try bob.messenger.read(String(first.idHex.prefix(8))) }
    }

    // MARK: Key rotation

    @Test("after an admin rotates bob's keys, alice is told, and her next message needs bob's new bundle")
    func rotation() throws {
        let world = try MessagingWorld()
        let (alice, bob) = (world.alice, world.bob)
        _ = try world.deliver(try world.send("before", from: alice, to: bob)[0])
        let oldKey = bob.publicKey
        let stale = try world.bundle(of: bob, for: alice)
        let inFlight = try world.send("in flight", from: alice, to: bob)[0]
        try world.rotate(bob)
        #expect(bob.publicKey != oldKey)
        #expect(bob.identity.retired.map(\.keys.identity.publicKey) == [oldKey])

        // An envelope sealed to the old keys before the rotation still opens.
        #expect(try world.deliver(inFlight).message?.text == "in flight")

        let composed = try alice.messenger.compose("after", to: [bob.name], precedence: .routine, ttl: .day, now: world.now)
        let change = try #require(composed[0].keysChanged)
        #expect(change.member == bob.name)
        #expect(change.fingerprint == bob.identity.fingerprint.description)
        let due = try #require(try alice.messenger.unsealed(now: world.now).first)
        #expect(due.needs == .bundle)

        // Neither the old session nor a bundle signed by the old key will do.
        let noBundle = #expect(throws: ClientError.self) { try alice.messenger.seal(due.item, to: bob.name, bundle: nil, now: world.now) }
        #expect(noBundle?.code == "no-bundle")
        #expect(try alice.messenger.readyToSend(now: world.now).isEmpty)
        let oldBundle = #expect(throws: ClientError.self) {
            try alice.messenger.checkBundle(
                member: bob.name, identityKey: oldKey.bytes, signedPrekey: stale.pqxdh!.signedPrekey.bytes,
                signedPrekeySignature: stale.pqxdh!.signedPrekeySignature.bytes, envelopeKey: stale.envelopeKey.bytes,
                envelopeKeySignature: SealedEnvelope.signEnvelopeKey(stale.envelopeKey, with: bob.identity.retired[0].keys.identity).bytes,
                oneTimePrekey: [], kemPrekey: stale.pqxdh!.kemPrekey.key.bytes, kemPrekeySignature: stale.pqxdh!.kemPrekey.signature.bytes,
                kemPrekeyLastResort: stale.pqxdh!.kemPrekey.kind == .lastResort)
        }
        #expect(oldBundle?.code == "bundle-identity")

        let notices = try alice.messenger.seal(due.item, to: bob.name, bundle: world.bundle(of: bob, for: alice), now: world.now)
        #expect(notices.contains { if case .keysChanged(let change) = $0 { change.member == bob.name } else { false } })
        let envelope = try #require(try world.flush(alice).first { $0.kind == .message })
        #expect(try world.deliver(envelope).message?.text == "after")
    }

    @Test("after bob's own rotation, what he writes to alice, with whom he had a session, reaches her")
    func replyAfterOwnRotation() throws {
        let world = try MessagingWorld()
        let (alice, bob) = (world.alice, world.bob)
        _ = try world.deliver(try world.send("before", from: alice, to: bob)[0])
        try world.rotate(bob)
        // Bob's session with alice was agreed under his old key, which alice no longer trusts.
        _ = try bob.messenger.compose("reply", to: [alice.name], precedence: .routine, ttl: .day, now: world.now)
        for envelope in try world.flush(bob) {
            let outcome = try world.deliver(envelope)
            #expect(outcome.refusalCode == nil, "\(envelope.kind): \(outcome)")
        }
        #expect(try alice.messenger.inbox(unreadOnly: false).map(\.text) == ["reply"])
    }

    @Test("a message received with changed keys keeps its warning in the inbox")
    func keyChangeKeptInInbox() throws {
        let world = try MessagingWorld()
        let (bob, carol) = (world.bob, world.carol)
        // Carol holds bob's old key (she wrote to him); bob, rotated, writes to her first.
        _ = try world.send("to the old keys", from: carol, to: bob)
        try world.rotate(bob)
        let received = try #require(try world.deliver(try world.send("new keys", from: bob, to: carol)[0]).message)
        #expect(received.keysChanged?.member == bob.name)
        #expect(try carol.messenger.inbox(unreadOnly: false).first?.keysChanged?.member == bob.name)
    }

    func expectDamaged<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) {
        let error = #expect(throws: ClientError.self, sourceLocation: sourceLocation) { _ = try body() }
        #expect(error?.kind == .damaged, sourceLocation: sourceLocation)
        #expect(error?.code == "message-store", sourceLocation: sourceLocation)
    }
}
