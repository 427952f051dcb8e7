import Testing
import ValiseClient
import ValiseCrypto
import ValiseSession
import ValiseStore

extension MessengerTests {
    /// The device's KEM prekeys as its store holds them.
    private func kemPrekeys(_ device: MessagingDevice) throws -> (oneTime: [StoredPrekey], lastResort: [StoredPrekey]) {
        try device.messenger.store.read("read the KEM prekeys") { tx in (try tx.prekeys(.kemOneTime), try tx.prekeys(.kemLastResort)) }
    }

    @Test("KEM prekeys: private halves committed before upload, signed for their kind; the last-resort one rotates weekly with the signed prekey and the retired one is kept 38 days, then deleted")
    func kemPrekeySchedule() throws {
        let world = try MessagingWorld()
        let bob = world.bob
        let start = world.now
        let first = try bob.messenger.preparePrekeys(newOneTimePrekeys: 0, newOneTimeKEMPrekeys: 3, now: start)
        #expect(first.lastResortKEMPrekey.kind == .lastResort && first.lastResortKEMPrekey.isValid(for: bob.publicKey))
        #expect(first.oneTimeKEMPrekeys.count == 3 && first.oneTimeKEMPrekeys.allSatisfy { $0.kind == .oneTime && $0.isValid(for: bob.publicKey) })
        var held = try kemPrekeys(bob)
        #expect(Set(held.oneTime.map(\.publicKey)) == Set(first.oneTimeKEMPrekeys.map(\.id)), "stored under their ids")
        #expect(held.lastResort.map(\.publicKey) == [first.lastResortKEMPrekey.id])
        for stored in held.oneTime + held.lastResort {
            #expect(try PQXDH.kemPrekeyID(MLKEM1024PrivateKey(seed: stored.privateKey).publicKey) == stored.publicKey, "the seed is the key's")
        }

        // Within the week: the same last-resort key; a week on: a new one, the old one retired.
        let sameWeek = try bob.messenger.preparePrekeys(newOneTimePrekeys: 0, now: start + 86_400)
        #expect(sameWeek.lastResortKEMPrekey == first.lastResortKEMPrekey && !sameWeek.rotated)
        let nextWeek = try bob.messenger.preparePrekeys(newOneTimePrekeys: 0, now: start + Messenger.signedPrekeyLifetime)
        #expect(nextWeek.rotated && nextWeek.lastResortKEMPrekey.key != first.lastResortKEMPrekey.key)
        held = try kemPrekeys(bob)
        #expect(held.lastResort.count == 2 && held.lastResort.filter { $0.retiredAt == nil }.map(\.publicKey) == [nextWeek.lastResortKEMPrekey.id])
        #expect(held.oneTime.count == 3, "one-time KEM prekeys do not expire with the week")

        // The retired one is kept for messages in flight, then deleted.
        let retired = start + Messenger.signedPrekeyLifetime
        // (By then the second one has rotated away too: it is retired, and kept.)
        _ = try bob.messenger.preparePrekeys(newOneTimePrekeys: 0, now: retired + Messenger.retiredPrekeyRetention - 1)
        held = try kemPrekeys(bob)
        #expect(held.lastResort.contains { $0.publicKey == first.lastResortKEMPrekey.id })
        #expect(held.lastResort.contains { $0.publicKey == nextWeek.lastResortKEMPrekey.id && $0.retiredAt != nil })
        _ = try bob.messenger.preparePrekeys(newOneTimePrekeys: 0, now: retired + Messenger.retiredPrekeyRetention)
        held = try kemPrekeys(bob)
        #expect(!held.lastResort.contains { $0.publicKey == first.lastResortKEMPrekey.id })
        #expect(held.lastResort.contains { $0.publicKey == nextWeek.lastResortKEMPrekey.id })
    }

    @Test("KEM prekeys: how many to add tops the relay up to 100 below 25, within its bound")
    func kemTopUp() {
        #expect(Messenger.oneTimeKEMPrekeysToAdd(relayHolds: 0) == 100)
        #expect(Messenger.oneTimeKEMPrekeysToAdd(relayHolds: 24) == 76)
        #expect(Messenger.oneTimeKEMPrekeysToAdd(relayHolds: 25) == 0)
        #expect(PrekeyLimits.maximumOneTimeKEMPrekeys == 100)
    }
}
