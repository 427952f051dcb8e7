#if Postgres
import Foundation
import Testing
import ValisePostgres
import ValiseStore

/// Prekeys shared by two nodes (two stores on one schema): one-time prekeys handed out
/// once, whichever node is asked and however many fetches race. The general contract runs
/// in the conformance suite against both stores.
@Suite("PostgreSQL prekeys shared by nodes", .enabled(if: TestPostgres.isAvailable))
struct PostgresPrekeyTests {
    func prekeys(_ n: UInt8, at time: UInt64 = queueEpoch) -> StoredPrekeys {
        StoredPrekeys(
            signedPrekey: [UInt8](repeating: n, count: 32), signedPrekeySignature: [UInt8](repeating: n &+ 1, count: 64),
            envelopeKey: [UInt8](repeating: n &+ 2, count: StoredPrekeys.envelopeKeyByteCount),
            envelopeKeySignature: [UInt8](repeating: n &+ 3, count: 64), updatedAt: time)
    }

    func oneTime(_ range: ClosedRange<Int>) -> [[UInt8]] {
        range.map { n in [UInt8(n >> 8), UInt8(n & 255)] + [UInt8](repeating: 7, count: 30) }
    }

    func kem(_ n: Int) -> StoredKEMPrekey {
        StoredKEMPrekey(key: [UInt8(n >> 8), UInt8(n & 255)] + [UInt8](repeating: 9, count: 1566), signature: [UInt8](repeating: UInt8(n & 255), count: 64))
    }

    let lastResort = StoredKEMPrekey(key: [UInt8](repeating: 0xAA, count: 1568), signature: [UInt8](repeating: 0xAB, count: 64))

    @Test("fetches racing on two nodes hand out every one-time prekey of each kind exactly once, and lose none")
    func concurrentTakes() throws {
        let (first, second) = try TestPostgres.twoNodes()
        defer { first.close(); second.close() }
        let mailboxes = [Mailbox("alice"), Mailbox("bob")]
        let maximum = PrekeyLimits.maximumOneTimePrekeys
        let maximumKEM = PrekeyLimits.maximumOneTimeKEMPrekeys
        for mailbox in mailboxes {
            let counts = try first.storePrekeys(
                mailbox: mailbox, prekeys: prekeys(1), oneTimePrekeys: oneTime(1...maximum), lastResortKEMPrekey: lastResort,
                oneTimeKEMPrekeys: (1...maximumKEM).map(kem))
            #expect(counts == PrekeyCounts(oneTime: maximum, oneTimeKEM: maximumKEM))
        }

        // Eight fetchers, four a node, each fetching both mailboxes' bundles until neither
        // has a one-time prekey left; one fetch in five declines the one-time prekeys.
        let handed = Locked<[Mailbox: (oneTime: [[UInt8]], kem: [[UInt8]], lastResort: Int)]>([:])
        let done = CompletionCounter()
        for fetcher in 0..<8 {
            let store = fetcher % 2 == 0 ? first : second
            Thread {
                defer { done.signal() }
                var asked = 0
                for _ in 0..<(2 * maximum) {
                    guard let bundles = try? store.takeBundles(mailboxes, takeOneTimePrekey: { _ in
                        asked += 1
                        return asked % 5 != 0
                    }) else { continue }
                    handed.withValue { handed in
                        for (mailbox, bundle) in zip(mailboxes, bundles) {
                            guard let bundle else { continue }
                            if let key = bundle.oneTimePrekey { handed[mailbox, default: ([], [], 0)].oneTime.append(key) }
                            if bundle.kemPrekeyIsLastResort {
                                handed[mailbox, default: ([], [], 0)].lastResort += 1
                            } else if let kem = bundle.kemPrekey {
                                handed[mailbox, default: ([], [], 0)].kem.append(kem.key)
                            }
                        }
                    }
                    if bundles.allSatisfy({ $0?.oneTimePrekeysLeft == 0 && $0?.oneTimeKEMPrekeysLeft == 0 }) { return }
                }
            }.start()
        }
        #expect(done.wait(for: 8, seconds: 120))

        for mailbox in mailboxes {
            let result = try #require(handed.current[mailbox])
            #expect(result.oneTime.count == maximum)
            #expect(Set(result.oneTime) == Set(oneTime(1...maximum)))
            #expect(result.kem.count == maximumKEM)
            #expect(Set(result.kem) == Set((1...maximumKEM).map { kem($0).key }))
            // Once the KEM ones ran out, fetches carried the last-resort key.
            #expect(result.lastResort > 0)
            #expect(try second.oneTimePrekeyCount(mailbox: mailbox) == 0)
            #expect(try first.oneTimeKEMPrekeyCount(mailbox: mailbox) == 0)
        }
    }

    @Test("a fetch that declines takes nothing, and a read without the question locks and takes nothing")
    func declinedAndRead() throws {
        let (first, second) = try TestPostgres.twoNodes()
        defer { first.close(); second.close() }
        let bob = Mailbox("bob")
        _ = try first.storePrekeys(
            mailbox: bob, prekeys: prekeys(2), oneTimePrekeys: oneTime(1...3), lastResortKEMPrekey: lastResort, oneTimeKEMPrekeys: [kem(1)])
        var asked: [Int] = []
        let declined = try second.takeBundles([Mailbox("nobody"), bob]) { index in
            asked.append(index)
            return false
        }
        #expect(asked == [1])
        #expect(declined[0] == nil)
        let bundle = try #require(declined[1])
        #expect(bundle.oneTimePrekey == nil && bundle.kemPrekey == lastResort && bundle.kemPrekeyIsLastResort)
        #expect(bundle.oneTimePrekeysLeft == 3 && bundle.oneTimeKEMPrekeysLeft == 1)
        let read = try second.takeBundles([bob], takeOneTimePrekey: nil)
        #expect(read[0]?.prekeys == prekeys(2) && read[0]?.oneTimePrekey == nil && read[0]?.oneTimePrekeysLeft == 3)
        // The oldest upload goes first (then by key), as in SQLite.
        let taken = try #require(try first.takeBundle(mailbox: bob))
        #expect(taken.oneTimePrekey == oneTime(1...1)[0] && taken.kemPrekey == kem(1) && !taken.kemPrekeyIsLastResort)
    }

    @Test("uploads of one mailbox racing on two nodes never pass the limit together")
    func concurrentUploads() throws {
        let (first, second) = try TestPostgres.twoNodes()
        defer { first.close(); second.close() }
        let carol = Mailbox("carol")
        let maximum = PrekeyLimits.maximumOneTimePrekeys
        // Two uploads of 150 different keys each: together they pass the limit, so one is refused.
        #expect(2 * 150 > maximum)
        let batches = [oneTime(1...150), oneTime(1001...1150)]
        let outcomes = Locked<[Result<PrekeyCounts, StoreError>]>([])
        let done = CompletionCounter()
        for (index, store) in [first, second].enumerated() {
            let batch = batches[index]
            Thread {
                let outcome = Result { () throws(StoreError) -> PrekeyCounts in
                    try store.storePrekeys(
                        mailbox: carol, prekeys: self.prekeys(UInt8(index)), oneTimePrekeys: batch, lastResortKEMPrekey: self.lastResort,
                        oneTimeKEMPrekeys: [])
                }
                outcomes.withValue { $0.append(outcome) }
                done.signal()
            }.start()
        }
        #expect(done.wait(for: 2, seconds: 60))
        let stored = outcomes.current.filter { if case .success = $0 { true } else { false } }
        let refused = outcomes.current.filter { if case .failure(let error) = $0 { error.kind == .limitReached } else { false } }
        #expect(stored.count == 1 && refused.count == 1)
        #expect(try first.oneTimePrekeyCount(mailbox: carol) == 150)
    }

    @Test("stale prekeys deleted on one node are gone for the other; a current owner's keep their signed keys")
    func staleAcrossNodes() throws {
        let (first, second) = try TestPostgres.twoNodes()
        defer { first.close(); second.close() }
        for (n, name) in ["dave", "erin"].enumerated() {
            _ = try first.storePrekeys(
                mailbox: Mailbox(name), prekeys: prekeys(UInt8(n)), oneTimePrekeys: oneTime(1...4), lastResortKEMPrekey: lastResort,
                oneTimeKEMPrekeys: [kem(1), kem(2)])
        }
        // dave's signed prekeys are no longer his member's; erin's are, but kem(2) is not.
        let ownership = PrekeyOwnership(
            signedPrekeys: { mailbox, _ in mailbox.name != "dave" },
            kemPrekey: { _, prekey, _ in prekey != self.kem(2) })
        #expect(try second.deleteStalePrekeys([Mailbox("erin"), Mailbox("dave"), Mailbox("nobody")], current: ownership) == [Mailbox("dave")])
        #expect(try first.takeBundle(mailbox: Mailbox("dave")) == nil)
        let erin = try #require(try first.takeBundles([Mailbox("erin")], takeOneTimePrekey: nil)[0])
        #expect(erin.prekeys == prekeys(1) && erin.oneTimePrekeysLeft == 0 && erin.oneTimeKEMPrekeysLeft == 1)
    }
}
#endif
