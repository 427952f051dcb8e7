import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseSession
import ValiseWire

// Prekeys through a running relay: upload checked against the directory, each one-time
// prekey (X25519 and ML-KEM) handed out once, one per (device, member) an hour, then the
// last-resort KEM prekey, the bundle usable for PQXDH, purged with a revoked member.
extension QueueTests {
    static func wire(_ prekey: PQXDH.KEMPrekey) -> WireKEMPrekey {
        var wire = WireKEMPrekey()
        wire.key = Data(prekey.key.bytes)
        wire.signature = Data(prekey.signature.bytes)
        return wire
    }

    func upload(_ device: QueueDevice, identity: SigningKey, signedPrekey: AgreementPrivateKey, envelopeKey: XWingPrivateKey,
                oneTime: [AgreementPrivateKey], signer: SigningKey? = nil, kem: [MLKEM1024PrivateKey] = [],
                lastResort: MLKEM1024PrivateKey? = MLKEM1024PrivateKey(), edit: (inout WirePrekeyUpload) -> Void = { _ in }) async throws(ClientError) -> WireRelayMessage {
        var upload = WirePrekeyUpload()
        upload.signedPrekey = Data(signedPrekey.publicKey.bytes)
        upload.signedPrekeySignature = Data(PQXDH.signPrekey(signedPrekey.publicKey, with: signer ?? identity).bytes)
        upload.envelopeKemKey = Data(envelopeKey.publicKey.bytes)
        upload.envelopeKemKeySignature = Data(SealedEnvelope.signEnvelopeKey(envelopeKey.publicKey, with: signer ?? identity).bytes)
        upload.oneTimePrekeys = oneTime.map { Data($0.publicKey.bytes) }
        upload.oneTimeKemPrekeys = kem.map { Self.wire(PQXDH.KEMPrekey(key: $0.publicKey, kind: .oneTime, signedBy: signer ?? identity)) }
        if let lastResort { upload.lastResortKemPrekey = Self.wire(PQXDH.KEMPrekey(key: lastResort.publicKey, kind: .lastResort, signedBy: signer ?? identity)) }
        edit(&upload)
        return try await device.client.request(.prekeyUpload(upload))
    }

    func fetchBundles(_ device: QueueDevice, _ members: [String], envelopeKeyOnly: Bool = false) async throws(ClientError) -> [WirePrekeyBundle] {
        var fetch = WirePrekeyFetch()
        fetch.members = members
        fetch.envelopeKeyOnly = envelopeKeyOnly
        let answer = try await device.client.request(.prekeyFetch(fetch))
        guard case .prekeyBundles(let bundles)? = answer.body, bundles.bundles.count == members.count else {
            throw ClientError(kind: .failure, code: "unexpected", message: "not one PrekeyBundle per member: \(answer)")
        }
        return bundles.bundles
    }

    /// One member's bundle; its error (UNKNOWN_RECIPIENT, NO_PREKEYS) thrown as the relay's.
    func fetchBundle(_ device: QueueDevice, _ member: String) async throws(ClientError) -> WirePrekeyBundle {
        let bundle = try await fetchBundles(device, [member])[0]
        guard bundle.error == .unspecified else {
            throw ClientError(kind: .failure, code: "relay-\(bundle.error)", message: "the bundle of \(member): \(bundle.error)")
        }
        return bundle
    }

    @Test("prekeys: bob uploads, alice fetches a bundle that starts a session bob can read; each one-time prekey goes out once; a forged signature and an unknown member are refused")
    func prekeys() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob, Self.carol])
        let bobIdentity = try world.identityKey(Self.bob)
        let bob = try await QueueDevice(world: world, member: Self.bob)
        let alice = try await QueueDevice(world: world, member: Self.alice)

        // Nothing published yet.
        await #expect(throws: ClientError.self) { try await fetchBundle(alice, Self.bob) }

        let signedPrekey = AgreementPrivateKey()
        let envelopeKey = XWingPrivateKey()
        let oneTime = (0..<2).map { _ in AgreementPrivateKey() }
        let kem = (0..<2).map { _ in MLKEM1024PrivateKey() }
        let lastResort = MLKEM1024PrivateKey()
        // Signed by another identity key (alice's): refused, nothing stored.
        let aliceKey = try world.identityKey(Self.alice)
        do {
            let forged = try await upload(bob, identity: bobIdentity, signedPrekey: signedPrekey, envelopeKey: envelopeKey, oneTime: oneTime, signer: aliceKey)
            Issue.record("a forged upload was accepted: \(forged)")
        } catch {
            #expect(error.code == "relay-\(WireErrorCode.badRequest)", "\(error)")
        }
        // An X25519 envelope key (what an older Valise uploaded), or none: refused, nothing stored.
        for key in [Data(AgreementPrivateKey().publicKey.bytes), Data()] {
            var old = WirePrekeyUpload()
            old.signedPrekey = Data(signedPrekey.publicKey.bytes)
            old.signedPrekeySignature = Data(PQXDH.signPrekey(signedPrekey.publicKey, with: bobIdentity).bytes)
            old.lastResortKemPrekey = Self.wire(PQXDH.KEMPrekey(key: lastResort.publicKey, kind: .lastResort, signedBy: bobIdentity))
            old.envelopeKemKey = key
            old.envelopeKemKeySignature = Data(bobIdentity.signature(for: Array(key), purpose: SealedEnvelope.envelopeKeyPurpose).bytes)
            await #expect(throws: ClientError.self) { try await bob.client.request(.prekeyUpload(old)) }
        }
        await #expect(throws: ClientError.self) { try await fetchBundle(alice, Self.bob) }
        let stored = try await upload(
            bob, identity: bobIdentity, signedPrekey: signedPrekey, envelopeKey: envelopeKey, oneTime: oneTime, kem: kem, lastResort: lastResort)
        guard case .prekeysStored(let count)? = stored.body else { Issue.record("not stored: \(stored)"); return }
        #expect(count.oneTimePrekeys == 2 && count.oneTimeKemPrekeys == 2)

        // One for each device (a device gets one of a member's an hour).
        let carol = try await QueueDevice(world: world, member: Self.carol)
        var handed: Set<Data> = []
        var handedKEM: Set<Data> = []
        for (device, left) in [(alice, 1), (carol, 0)] {
            let bundle = try await fetchBundle(device, Self.bob)
            #expect(bundle.identityKey == Data(bobIdentity.publicKey.bytes))
            #expect(bundle.oneTimePrekeysLeft == UInt32(left) && bundle.oneTimeKemPrekeysLeft == UInt32(left))
            #expect(bundle.oneTimePrekey.count == 32 && !handed.contains(bundle.oneTimePrekey))
            #expect(bundle.kemPrekey.key.count == 1568 && !bundle.kemPrekeyLastResort && !handedKEM.contains(bundle.kemPrekey.key))
            handed.insert(bundle.oneTimePrekey)
            handedKEM.insert(bundle.kemPrekey.key)
        }
        #expect(handed == Set(oneTime.map { Data($0.publicKey.bytes) }))
        #expect(handedKEM == Set(kem.map { Data($0.publicKey.bytes) }))
        let last = try await fetchBundle(alice, Self.bob)
        #expect(last.oneTimePrekey.isEmpty)
        #expect(last.kemPrekey.key == Data(lastResort.publicKey.bytes) && last.kemPrekeyLastResort)

        // The bundle starts a session that bob reads (the relay passed it through intact).
        let aliceIdentity = try world.identityKey(Self.alice)
        let pqxdhBundle = PQXDH.PrekeyBundle(
            identityKey: try SigningPublicKey(bytes: Array(last.identityKey)), signedPrekey: try AgreementPublicKey(bytes: Array(last.signedPrekey)),
            signedPrekeySignature: try Signature(bytes: Array(last.signedPrekeySignature)), oneTimePrekey: nil,
            kemPrekey: PQXDH.KEMPrekey(
                key: try MLKEM1024PublicKey(bytes: Array(last.kemPrekey.key)), kind: .lastResort, signature: try Signature(bytes: Array(last.kemPrekey.signature))))
        var session = try Session.initiate(identity: aliceIdentity, bundle: pqxdhBundle)
        let message = try session.encrypt(Array("through the relay's bundle".utf8))
        let accepted = try Session.accept(message, identity: bobIdentity, prekeys: Session.Prekeys(
            signedPrekey: { $0 == signedPrekey.publicKey ? signedPrekey : nil }, oneTimePrekey: { _ in nil },
            kemPrekey: { $0 == PQXDH.kemPrekeyID(lastResort.publicKey) ? (lastResort, .lastResort) : nil }, seenBefore: { _ in false }))
        #expect(accepted.plaintext == Array("through the relay's bundle".utf8))
        #expect(SealedEnvelope.isValidEnvelopeKey(
            try XWingPublicKey(bytes: Array(last.envelopeKemKey)), signature: try Signature(bytes: Array(last.envelopeKemKeySignature)),
            identity: bobIdentity.publicKey))

        do {
            let answer = try await fetchBundle(alice, "nobody@nowhere")
            Issue.record("an unknown member's bundle: \(answer)")
        } catch {
            #expect(error.code == "relay-\(WireErrorCode.unknownRecipient)", "\(error)")
        }
        for device in [alice, bob, carol] { await device.close() }
    }

    @Test("prekeys: an upload without a last-resort KEM prekey, with a KEM prekey signed for the other kind, by another key or not an ML-KEM-1024 key, or with too many, is refused and stores nothing")
    func badKEMUploads() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob])
        let bobIdentity = try world.identityKey(Self.bob)
        let bob = try await QueueDevice(world: world, member: Self.bob)
        let alice = try await QueueDevice(world: world, member: Self.alice)
        let key = MLKEM1024PrivateKey()
        let edits: [(String, (inout WirePrekeyUpload) -> Void)] = [
            ("no last-resort KEM prekey", { $0.clearLastResortKemPrekey() }),
            ("last resort signed as one-time", { $0.lastResortKemPrekey = Self.wire(PQXDH.KEMPrekey(key: key.publicKey, kind: .oneTime, signedBy: bobIdentity)) }),
            ("one-time signed as last resort", { $0.oneTimeKemPrekeys = [Self.wire(PQXDH.KEMPrekey(key: key.publicKey, kind: .lastResort, signedBy: bobIdentity))] }),
            ("signed by alice", { $0.oneTimeKemPrekeys = [Self.wire(PQXDH.KEMPrekey(key: key.publicKey, kind: .oneTime, signedBy: try! world.identityKey(Self.alice)))] }),
            ("not a key", { upload in
                var bad = Self.wire(PQXDH.KEMPrekey(key: key.publicKey, kind: .oneTime, signedBy: bobIdentity))
                bad.key = Data(repeating: 0xFF, count: 1568)
                upload.oneTimeKemPrekeys = [bad]
            }),
            ("short", { upload in
                var bad = Self.wire(PQXDH.KEMPrekey(key: key.publicKey, kind: .lastResort, signedBy: bobIdentity))
                bad.key = bad.key.prefix(1567)
                upload.lastResortKemPrekey = bad
            }),
        ]
        for (name, edit) in edits {
            do {
                let answer = try await upload(
                    bob, identity: bobIdentity, signedPrekey: AgreementPrivateKey(), envelopeKey: XWingPrivateKey(), oneTime: [], edit: edit)
                Issue.record("\(name): accepted: \(answer)")
            } catch {
                #expect(error.code == "relay-\(WireErrorCode.badRequest)", "\(name): \(error)")
            }
        }
        do {
            let answer = try await upload(
                bob, identity: bobIdentity, signedPrekey: AgreementPrivateKey(), envelopeKey: XWingPrivateKey(), oneTime: [],
                kem: (0...100).map { _ in key })
            Issue.record("101 one-time KEM prekeys accepted: \(answer)")
        } catch {
            #expect(error.code == "relay-\(WireErrorCode.tooLarge)", "\(error)")
        }
        await #expect(throws: ClientError.self) { try await fetchBundle(alice, Self.bob) }
        for device in [alice, bob] { await device.close() }
    }

    @Test("prekeys: a device gets one of a member's one-time prekeys an hour; its further fetches get the bundle without one (not RATE_LIMITED), and the member keeps the rest")
    func oneTimePrekeyPerMember() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob, Self.carol])
        let bobIdentity = try world.identityKey(Self.bob)
        let bob = try await QueueDevice(world: world, member: Self.bob)
        _ = try await upload(bob, identity: bobIdentity, signedPrekey: AgreementPrivateKey(), envelopeKey: XWingPrivateKey(),
                             oneTime: (0..<10).map { _ in AgreementPrivateKey() })
        let alice = try await QueueDevice(world: world, member: Self.alice)
        let first = try await fetchBundle(alice, Self.bob)
        #expect(first.oneTimePrekey.count == 32 && first.oneTimePrekeysLeft == 9, "\(first)")
        for attempt in 1...5 {
            let again = try await fetchBundle(alice, Self.bob)
            #expect(again.oneTimePrekey.isEmpty, "fetch \(attempt + 1) of the same member handed out another one-time prekey: \(again.oneTimePrekeysLeft) left")
            #expect(again.oneTimePrekeysLeft == 9 && again.signedPrekey == first.signedPrekey && again.envelopeKemKey == first.envelopeKemKey)
        }
        // A new connection of the same device is the same device.
        await alice.close()
        let again = try await QueueDevice(world: world, member: Self.alice)
        let later = try await fetchBundle(again, Self.bob)
        #expect(later.oneTimePrekey.isEmpty && later.oneTimePrekeysLeft == 9, "\(later)")
        // Another device gets its own one.
        let carol = try await QueueDevice(world: world, member: Self.carol)
        let carols = try await fetchBundle(carol, Self.bob)
        #expect(carols.oneTimePrekey.count == 32 && carols.oneTimePrekey != first.oneTimePrekey && carols.oneTimePrekeysLeft == 8, "\(carols)")
        #expect(world.relay.isRunning)
        for device in [again, carol, bob] { await device.close() }
    }
}

extension QueueTests {
    @Test("prekeys: one fetch names several members and gets a bundle for each, in order; an unknown member or one without prekeys gets its error, the others their keys; 0 members BAD_REQUEST, 101 TOO_LARGE")
    func batchedFetch() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob, Self.carol])
        let bobIdentity = try world.identityKey(Self.bob)
        let bob = try await QueueDevice(world: world, member: Self.bob)
        _ = try await upload(bob, identity: bobIdentity, signedPrekey: AgreementPrivateKey(), envelopeKey: XWingPrivateKey(),
                             oneTime: (0..<5).map { _ in AgreementPrivateKey() })
        let alice = try await QueueDevice(world: world, member: Self.alice)
        let answers = try await fetchBundles(alice, [Self.bob, "nobody@nowhere", Self.carol, "not a name", Self.bob])
        #expect(answers.map(\.member) == [Self.bob, "nobody@nowhere", Self.carol, "not a name", Self.bob])
        #expect(answers.map(\.error) == [.unspecified, .unknownRecipient, .noPrekeys, .unknownRecipient, .unspecified])
        #expect(answers[0].identityKey == Data(bobIdentity.publicKey.bytes) && answers[0].oneTimePrekey.count == 32 && answers[0].oneTimePrekeysLeft == 4)
        #expect(answers[4].signedPrekey == answers[0].signedPrekey && answers[4].oneTimePrekey.isEmpty, "one of bob's an hour for alice's device")
        for failed in [answers[1], answers[2], answers[3]] {
            #expect(failed.identityKey.isEmpty && failed.signedPrekey.isEmpty && failed.envelopeKemKey.isEmpty && failed.oneTimePrekey.isEmpty)
        }

        for count in [0, 101] {
            do {
                let answer = try await fetchBundles(alice, Array(repeating: Self.bob, count: count))
                Issue.record("a fetch of \(count) members was answered: \(answer.count)")
            } catch {
                #expect(error.code == (count == 0 ? "relay-\(WireErrorCode.badRequest)" : "relay-\(WireErrorCode.tooLarge)"), "\(error)")
            }
        }
        for device in [alice, bob] { await device.close() }
    }

    @Test("prekeys: envelope_key_only hands out the envelope key and its signature only: no signed prekey, no one-time prekey, whatever the device's allowance")
    func envelopeKeyOnly() async throws {
        let world = try RelayWorld(members: [Self.alice, Self.bob, Self.carol])
        let bobIdentity = try world.identityKey(Self.bob)
        let bob = try await QueueDevice(world: world, member: Self.bob)
        let envelopeKey = XWingPrivateKey()
        _ = try await upload(bob, identity: bobIdentity, signedPrekey: AgreementPrivateKey(), envelopeKey: envelopeKey,
                             oneTime: (0..<5).map { _ in AgreementPrivateKey() })
        let carol = try await QueueDevice(world: world, member: Self.carol)
        for _ in 0..<3 {
            let answer = try await fetchBundles(carol, [Self.bob], envelopeKeyOnly: true)[0]
            #expect(answer.error == .unspecified && answer.identityKey == Data(bobIdentity.publicKey.bytes))
            #expect(answer.envelopeKemKey == Data(envelopeKey.publicKey.bytes))
            #expect(SealedEnvelope.isValidEnvelopeKey(
                try XWingPublicKey(bytes: Array(answer.envelopeKemKey)), signature: try Signature(bytes: Array(answer.envelopeKemKeySignature)),
                identity: bobIdentity.publicKey))
            #expect(answer.signedPrekey.isEmpty && answer.signedPrekeySignature.isEmpty && answer.oneTimePrekey.isEmpty)
        }
        // None was taken: carol's first whole bundle still gets one, and bob has four left.
        let whole = try await fetchBundle(carol, Self.bob)
        #expect(whole.oneTimePrekey.count == 32 && whole.oneTimePrekeysLeft == 4, "\(whole.oneTimePrekeysLeft) left")
        for device in [carol, bob] { await device.close() }
    }
}
