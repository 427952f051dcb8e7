import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

/// The stand-ins' signatures are one repeated byte: an identity key "owns" the prekeys whose
/// signature byte it lists (the relay checks real signatures; the store only obeys).
func ownership(signedBy owned: Set<UInt8>, kem: Set<UInt8>?) -> PrekeyOwnership {
    var kemCheck: (@Sendable (Mailbox, StoredKEMPrekey, Bool) -> Bool)?
    if let kem { kemCheck = { _, prekey, _ in kem.contains(prekey.signature[0]) } }
    return PrekeyOwnership(signedPrekeys: { _, prekeys in owned.contains(prekeys.signedPrekeySignature[0]) }, kemPrekey: kemCheck)
}

extension PrekeyStoreTests {
    @Test("after a rotation, a mailbox whose signed prekeys the new identity key did not sign loses all its prekeys; its envelopes stay, and a mailbox the new key already signed for keeps its signed keys", arguments: StoreKind.allCases)
    func rotationDeletesEveryKind(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        try self.store(store, "bob", prekeys(1), oneTime: oneTime(1...3), kem: kems(1...3))
        try self.store(store, "erin", prekeys(5), oneTime: oneTime(1...3), kem: kems(1...3))
        _ = try store.accept([envelope("bob", 1)], now: queueEpoch)
        // prekeys(1) is signed with byte 2, prekeys(5) with byte 6: only erin's stay owned.
        let emptied = try store.deleteStalePrekeys([Mailbox("bob"), Mailbox("erin")], current: ownership(signedBy: [6], kem: Set(0...255)))
        #expect(emptied == [Mailbox("bob")])
        #expect(try store.takeBundle(mailbox: Mailbox("bob")) == nil)
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("bob")) == 0)
        #expect(try store.oneTimeKEMPrekeyCount(mailbox: Mailbox("bob")) == 0)
        #expect(try store.queuedIDs("bob") == [messageID(1)])
        // Erin's signed keys are the new key's (her new device uploaded first): they stay; her
        // unsigned one-time X25519 prekeys cannot be told from an old device's, and go.
        #expect(try store.takeBundles([Mailbox("erin")], takeOneTimePrekey: nil)[0]?.prekeys == prekeys(5))
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("erin")) == 0)
        #expect(try store.oneTimeKEMPrekeyCount(mailbox: Mailbox("erin")) == 3)
        // Nothing left to delete: the mailbox is not reported again, and a new upload is served.
        #expect(try store.deleteStalePrekeys([Mailbox("bob")], current: ownership(signedBy: [6], kem: nil)).isEmpty)
        try self.store(store, "bob", prekeys(5), oneTime: oneTime(4...4))
        #expect(try store.takeBundle(mailbox: Mailbox("bob"))?.oneTimePrekey == oneTime(4...4)[0])
    }

    @Test("when the new identity key's device uploaded before the deletion ran, its signed keys stay, KEM prekeys the old key signed go, and one-time X25519 prekeys (unsigned: whose cannot be told) all go", arguments: StoreKind.allCases)
    func newUploadFirst(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        try self.store(store, "bob", prekeys(1), oneTime: oneTime(1...2), kem: kems(1...3))
        try self.store(store, "bob", prekeys(5), oneTime: oneTime(3...4), kem: kems(7...8))
        // The new key signed prekeys(5) (byte 6) and KEM prekeys 7 and 8, and the last resort (0xAB).
        let emptied = try store.deleteStalePrekeys([Mailbox("bob")], current: ownership(signedBy: [6], kem: [7, 8, 0xAB]))
        #expect(emptied.isEmpty)
        #expect(try store.oneTimeKEMPrekeyCount(mailbox: Mailbox("bob")) == 2)
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("bob")) == 0)
        let bundle = try #require(try store.takeBundle(mailbox: Mailbox("bob")))
        #expect(bundle.prekeys == prekeys(5) && bundle.kemPrekey == kem(7))
    }

    @Test("the start-up check (no KEM check) deletes only mailboxes whose signed prekeys are not owned, and one-time prekeys held without signed prekeys", arguments: StoreKind.allCases)
    func startUpCheck(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        try self.store(store, "bob", prekeys(1), oneTime: oneTime(1...2), kem: kems(1...3))
        try self.store(store, "erin", prekeys(5), oneTime: oneTime(1...2), kem: kems(1...3))
        let emptied = try store.deleteStalePrekeys([Mailbox("bob"), Mailbox("erin"), Mailbox("nobody")], current: ownership(signedBy: [2], kem: nil))
        #expect(emptied == [Mailbox("erin")])
        #expect(try store.oneTimeKEMPrekeyCount(mailbox: Mailbox("bob")) == 3)
        #expect(try store.takeBundle(mailbox: Mailbox("erin")) == nil)
    }

    @Test("the writer runs the deletion on its thread; a writer without a prekey store refuses it", arguments: StoreKind.allCases)
    func throughTheWriter(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        try self.store(store, "bob", prekeys(1), oneTime: oneTime(1...2), kem: kems(1...3))
        let results = Locked<[Result<[Mailbox], StoreError>]>([])
        let done = CompletionCounter()
        let bare = GroupCommitWriter(store: store, clock: { queueEpoch })
        bare.start()
        bare.deleteStalePrekeys([Mailbox("bob")], current: ownership(signedBy: [], kem: nil)) { result in
            results.withValue { $0.append(result) }
            done.signal()
        }
        #expect(done.wait(for: 1))
        bare.stop()
        let writer = GroupCommitWriter(store: store, prekeys: store, clock: { queueEpoch })
        writer.start()
        writer.deleteStalePrekeys([Mailbox("bob")], current: ownership(signedBy: [], kem: nil)) { result in
            results.withValue { $0.append(result) }
            done.signal()
        }
        #expect(done.wait(for: 1))
        writer.stop()
        let seen = results.current
        #expect(seen.count == 2)
        #expect(throws: StoreError.self) { try seen[0].get() }
        #expect(try seen[1].get() == [Mailbox("bob")])
        #expect(try store.takeBundle(mailbox: Mailbox("bob")) == nil)
    }
}
