import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseStore

@Suite("Prekeys on the relay")
struct PrekeyStoreTests {
    let file = QueueFile()

    func prekeys(_ n: UInt8, at time: UInt64 = queueEpoch) -> StoredPrekeys {
        StoredPrekeys(
            signedPrekey: [UInt8](repeating: n, count: 32), signedPrekeySignature: [UInt8](repeating: n &+ 1, count: 64),
            envelopeKey: [UInt8](repeating: n &+ 2, count: StoredPrekeys.envelopeKeyByteCount), envelopeKeySignature: [UInt8](repeating: n &+ 3, count: 64), updatedAt: time)
    }

    func oneTime(_ range: ClosedRange<Int>) -> [[UInt8]] {
        range.map { n in [UInt8(n >> 8), UInt8(n & 255)] + [UInt8](repeating: 7, count: 30) }
    }

    @Test("each one-time prekey is handed out once; then bundles come without one; the count says when to replenish")
    func oneTimeOnce() throws {
        let store = try file.open()
        #expect(try store.takeBundle(mailbox: Mailbox("bob")) == nil)
        #expect(try store.storePrekeys(mailbox: Mailbox("bob"), prekeys: prekeys(1), oneTimePrekeys: oneTime(1...5)) == 5)
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
        let reopened = try file.open()
        #expect(try reopened.oneTimePrekeyCount(mailbox: Mailbox("bob")) == 0)
    }

    @Test("an upload replaces the signed prekey and envelope key, adds only new one-time prekeys, and refuses to pass the limit without changing anything")
    func replaceAndLimit() throws {
        let store = try file.open()
        let maximum = PrekeyLimits.maximumOneTimePrekeys
        #expect(try store.storePrekeys(mailbox: Mailbox("carol"), prekeys: prekeys(1), oneTimePrekeys: oneTime(1...(maximum - 10))) == maximum - 10)
        #expect(try store.storePrekeys(mailbox: Mailbox("carol"), prekeys: prekeys(2, at: queueEpoch + 5), oneTimePrekeys: oneTime(1...(maximum - 5))) == maximum - 5)
        #expect(throws: StoreError.self) {
            try store.storePrekeys(mailbox: Mailbox("carol"), prekeys: prekeys(3), oneTimePrekeys: oneTime(1...(maximum + 1)))
        }
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("carol")) == maximum - 5)
        #expect(try store.takeBundle(mailbox: Mailbox("carol"))?.prekeys == prekeys(2, at: queueEpoch + 5))
        #expect(throws: StoreError.self) {
            try store.storePrekeys(mailbox: Mailbox("carol"), prekeys: prekeys(3), oneTimePrekeys: [[1, 2, 3]])
        }
        let short = StoredPrekeys(signedPrekey: [1], signedPrekeySignature: [], envelopeKey: [], envelopeKeySignature: [], updatedAt: 0)
        #expect(throws: StoreError.self) { try store.storePrekeys(mailbox: Mailbox("carol"), prekeys: short, oneTimePrekeys: []) }
        #expect(try store.takeBundle(mailbox: Mailbox("carol"))?.prekeys == prekeys(2, at: queueEpoch + 5))
    }

    @Test("purging a revoked device removes its prekeys with its envelopes; other devices keep theirs; the relay's start-up purge sees prekey-only mailboxes")
    func purge() throws {
        let store = try file.open()
        _ = try store.storePrekeys(mailbox: Mailbox("dave"), prekeys: prekeys(1), oneTimePrekeys: oneTime(1...3))
        _ = try store.storePrekeys(mailbox: Mailbox("erin"), prekeys: prekeys(2), oneTimePrekeys: oneTime(1...3))
        _ = try store.accept([envelope("dave", 1)], now: queueEpoch)
        #expect(try store.occupiedMailboxes() == [Mailbox("dave"), Mailbox("erin")])
        #expect(try store.purge(mailbox: Mailbox("dave"), now: queueEpoch + 1) == 1)
        #expect(try store.takeBundle(mailbox: Mailbox("dave")) == nil)
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("dave")) == 0)
        #expect(try store.oneTimePrekeyCount(mailbox: Mailbox("erin")) == 3)
        #expect(try store.occupiedMailboxes() == [Mailbox("erin")])
    }
}
