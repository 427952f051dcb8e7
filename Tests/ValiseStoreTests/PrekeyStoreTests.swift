import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Prekeys on the relay")
struct PrekeyStoreTests {
    func prekeys(_ n: UInt8, at time: UInt64 = queueEpoch) -> StoredPrekeys {
        StoredPrekeys(
            signedPrekey: [UInt8](repeating: n, count: 32), signedPrekeySignature: [UInt8](repeating: n &+ 1, count: 64),
            envelopeKey: [UInt8](repeating: n &+ 2, count: StoredPrekeys.envelopeKeyByteCount), envelopeKeySignature: [UInt8](repeating: n &+ 3, count: 64), updatedAt: time)
    }

    func oneTime(_ range: ClosedRange<Int>) -> [[UInt8]] {
        range.map { n in [UInt8(n >> 8), UInt8(n & 255)] + [UInt8](repeating: 7, count: 30) }
    }

    /// Stand-ins of the right lengths: the store checks lengths, the relay the keys themselves.
    func kem(_ n: Int) -> StoredKEMPrekey {
        StoredKEMPrekey(key: [UInt8(n >> 8), UInt8(n & 255)] + [UInt8](repeating: 9, count: 1566), signature: [UInt8](repeating: UInt8(n & 255), count: 64))
    }

    func kems(_ range: ClosedRange<Int>) -> [StoredKEMPrekey] { range.map(kem) }

    let lastResort = StoredKEMPrekey(key: [UInt8](repeating: 0xAA, count: 1568), signature: [UInt8](repeating: 0xAB, count: 64))

    /// An upload with the last-resort KEM prekey and, by default, no one-time KEM prekeys.
    @discardableResult
    func store(
        _ store: any ContractStore, _ mailbox: String, _ prekeys: StoredPrekeys, oneTime: [[UInt8]], kem oneTimeKEM: [StoredKEMPrekey] = [],
        lastResort: StoredKEMPrekey? = nil
    ) throws -> PrekeyCounts {
        try store.storePrekeys(
            mailbox: Mailbox(mailbox), prekeys: prekeys, oneTimePrekeys: oneTime, lastResortKEMPrekey: lastResort ?? self.lastResort,
            oneTimeKEMPrekeys: oneTimeKEM)
    }

    @Test("each one-time prekey is handed out once; then bundles come without one; the count says when to replenish", arguments: StoreKind.allCases)
    func oneTimeOnce(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        #expect(try store.takeBundle(mailbox: Mailbox("bob")) == nil)
        #expect(try self.store(store, "bob", prekeys(1), oneTime: oneTime(1...5)).oneTime == 5)
        var handed: Set<[UInt8]> = []
        for left in (0..<5).reversed() {
            let bundle = try #require(try store.takeBundle(mailbox: Mailbox("bob")))
            #expect(bundle.prekeys == prekeys(1))
            let key = try #require(bundle.oneTimePrekey)
            #expect(!handed.contains(key))
            handed.insert(key)
            #expect(bundle.oneTimePrekeysLeft == left)
        }
        #expect(handed == Set(oneTime(1...5)))
        let empty = try #require(try store.takeBundle(mailbox: Mailbox("bob")))
        #expect(empty.oneTimePrekey == nil && empty.oneTimePrekeysLeft == 0)
        // Reopened (as after a crash), a handed-out key is still gone.
        let reopened = try queue.open()
        #expect(try reopened.oneTimePrekeyCount(mailbox: Mailbox("bob")) == 0)
    }

    @Test("an upload replaces the signed prekey and envelope key, adds only new one-time prekeys, and refuses to pass the limit without changing anything", arguments: StoreKind.allCases)
    func replaceAndLimit(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let maximum = PrekeyLimits.maximumOneTimePrekeys
        #expect(try self.store(store, "carol", prekeys(1), oneTime: oneTime(1...(maximum - 10))).oneTime == maximum - 10)
        #expect(try self.store(store, "carol", prekeys(2, at: queueEpoch + 5), oneTime: oneTime(1...(maximum - 5))).oneTime == maximum - 5)
        #expect(throws: StoreError.self) {
            try self.store(store, "carol", prekeys(3), oneTime: oneTime(1...(maximum + 1)))
        }
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("carol")) == maximum - 5)
        #expect(try store.takeBundle(mailbox: Mailbox("carol"))?.prekeys == prekeys(2, at: queueEpoch + 5))
        #expect(throws: StoreError.self) {
            try self.store(store, "carol", prekeys(3), oneTime: [[1, 2, 3]])
        }
        let short = StoredPrekeys(signedPrekey: [1], signedPrekeySignature: [], envelopeKey: [], envelopeKeySignature: [], updatedAt: 0)
        #expect(throws: StoreError.self) { try self.store(store, "carol", short, oneTime: []) }
        #expect(try store.takeBundle(mailbox: Mailbox("carol"))?.prekeys == prekeys(2, at: queueEpoch + 5))
    }

    @Test("purging a revoked device removes its prekeys with its envelopes; other devices keep theirs; the relay's start-up purge sees prekey-only mailboxes", arguments: StoreKind.allCases)
    func purge(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        try self.store(store, "dave", prekeys(1), oneTime: oneTime(1...3), kem: kems(1...3))
        try self.store(store, "erin", prekeys(2), oneTime: oneTime(1...3), kem: kems(1...3))
        _ = try store.accept([envelope("dave", 1)], now: queueEpoch)
        #expect(try store.occupiedMailboxes() == [Mailbox("dave"), Mailbox("erin")])
        #expect(try store.purge(mailbox: Mailbox("dave"), now: queueEpoch + 1) == 1)
        #expect(try store.takeBundle(mailbox: Mailbox("dave")) == nil)
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("dave")) == 0)
        #expect(try store.oneTimeKEMPrekeyCount(mailbox: Mailbox("dave")) == 0)
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("erin")) == 3)
        #expect(try store.oneTimeKEMPrekeyCount(mailbox: Mailbox("erin")) == 3)
        #expect(try store.occupiedMailboxes() == [Mailbox("erin")])
    }

    @Test("one-time KEM prekeys go out with the X25519 ones, each once, oldest first; then the last-resort one, which stays", arguments: StoreKind.allCases)
    func kemOneTimeThenLastResort(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        #expect(try self.store(store, "bob", prekeys(1), oneTime: oneTime(1...2), kem: kems(1...3)) == PrekeyCounts(oneTime: 2, oneTimeKEM: 3))
        var handed: [StoredKEMPrekey] = []
        for left in (0..<3).reversed() {
            let bundle = try #require(try store.takeBundle(mailbox: Mailbox("bob")))
            handed.append(try #require(bundle.kemPrekey))
            #expect(!bundle.kemPrekeyIsLastResort && bundle.oneTimeKEMPrekeysLeft == left)
            // The X25519 ones run out first; the KEM ones still go out alone.
            #expect((bundle.oneTimePrekey != nil) == (left >= 1))
        }
        #expect(handed == kems(1...3))
        for _ in 0..<2 {
            let bundle = try #require(try store.takeBundle(mailbox: Mailbox("bob")))
            #expect(bundle.kemPrekey == lastResort && bundle.kemPrekeyIsLastResort && bundle.oneTimeKEMPrekeysLeft == 0)
        }
        #expect(try store.oneTimeKEMPrekeyCount(mailbox: Mailbox("bob")) == 0)
    }

    @Test("a fetch refused a one-time prekey gets neither kind: the last-resort KEM prekey, and nothing is taken", arguments: StoreKind.allCases)
    func refusedFetchTakesNothing(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        try self.store(store, "bob", prekeys(1), oneTime: oneTime(1...2), kem: kems(1...2))
        let refused = try #require(try store.takeBundles([Mailbox("bob")]) { _ in false }[0])
        #expect(refused.oneTimePrekey == nil && refused.kemPrekey == lastResort && refused.kemPrekeyIsLastResort)
        let read = try #require(try store.takeBundles([Mailbox("bob")], takeOneTimePrekey: nil)[0])
        #expect(read.kemPrekey == lastResort && read.oneTimeKEMPrekeysLeft == 2 && read.oneTimePrekeysLeft == 2)
    }

    @Test("KEM prekeys: at most the limit, checked lengths, repeats ignored, and the last-resort one replaced by each upload", arguments: StoreKind.allCases)
    func kemLimits(kind: StoreKind) throws {
        let queue = QueueUnderTest(kind)
        let store = try queue.open()
        let maximum = PrekeyLimits.maximumOneTimeKEMPrekeys
        #expect(try self.store(store, "carol", prekeys(1), oneTime: [], kem: kems(1...(maximum - 10))).oneTimeKEM == maximum - 10)
        #expect(try self.store(store, "carol", prekeys(1), oneTime: [], kem: kems(1...(maximum - 5))).oneTimeKEM == maximum - 5)
        #expect(throws: StoreError.self) { try self.store(store, "carol", prekeys(1), oneTime: oneTime(1...3), kem: kems(1...(maximum + 1))) }
        #expect(try store.oneTimeKEMPrekeyCount(mailbox: Mailbox("carol")) == maximum - 5)
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("carol")) == 0, "a refused upload changes nothing")
        let shortKey = StoredKEMPrekey(key: [UInt8](repeating: 1, count: 1567), signature: [UInt8](repeating: 1, count: 64))
        let shortSignature = StoredKEMPrekey(key: [UInt8](repeating: 1, count: 1568), signature: [UInt8](repeating: 1, count: 63))
        for bad in [shortKey, shortSignature] {
            #expect(throws: StoreError.self) { try self.store(store, "carol", prekeys(1), oneTime: [], kem: [bad]) }
            #expect(throws: StoreError.self) { try self.store(store, "carol", prekeys(1), oneTime: [], lastResort: bad) }
        }
        let newLastResort = kem(4000)
        try self.store(store, "dave", prekeys(1), oneTime: [])
        try self.store(store, "dave", prekeys(2), oneTime: [], lastResort: newLastResort)
        #expect(try store.takeBundle(mailbox: Mailbox("dave"))?.kemPrekey == newLastResort)
    }
}
