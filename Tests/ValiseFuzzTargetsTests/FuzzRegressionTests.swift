import Foundation
import Testing
import ValiseStore
@testable import ValiseFuzzTargets
import ValiseTestSupport

/// Every fuzz target on its committed inputs — seeds, and each input a fuzzer ever crashed on
/// (Fuzz/crashes/TARGET/, committed with its fix) — on the seeds made in code, and on mutations
/// of them: each must return, whatever it is given.
@Suite("Fuzz targets: committed inputs and mutations (regressions)")
struct FuzzRegressionTests {
    /// The repository's Fuzz/ directory, found from this file's path.
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz").path

    static func committedInputs(_ target: String) -> [(String, [UInt8])] {
        ["seeds", "crashes"].flatMap { kind -> [(String, [UInt8])] in
            let folder = "\(fuzzDirectory)/\(kind)/\(target)"
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            return names.sorted().compactMap { name in
                FileManager.default.contents(atPath: "\(folder)/\(name)").map { ("\(kind)/\(target)/\(name)", [UInt8]($0)) }
            }
        }
    }

    @Test("the targets named by scripts/fuzz exist")
    func targetsExist() {
        #expect(FuzzTargets.names == [
            "frames", "noise-responder", "noise-initiator", "relay-messages", "directory", "envelope", "keystore", "link-responder",
            "link-messages", "relay-store",
        ])
        #expect(!FuzzTargets.run("no-such-target", []))
        #expect(FileManager.default.fileExists(atPath: Self.fuzzDirectory + "/seeds/directory"), "Fuzz/ not found at \(Self.fuzzDirectory)")
    }

    @Test("relay-store starts from a genuine queue and blob store, which open and hold what was put in")
    func storeTargetHasItsFiles() throws {
        let files = try #require(FuzzTargets.storeFiles, "the store files could not be made")
        #expect(Array(files.queue.prefix(16)) == Array("SQLite format 3\0".utf8) && Array(files.blobs.prefix(16)) == Array("SQLite format 3\0".utf8))
        // The target's own reads reach the rows: the undamaged queue has its four envelopes
        // for bob, the first acknowledged, and the complete blob reads back whole.
        let folder = TemporaryDirectory()
        // Removed when `folder` goes, at the end of this scope, not at its last use.
        defer { withExtendedLifetime(folder) {} }
        let directory = folder.path
        #expect(FileManager.default.createFile(atPath: directory + "/queue.sqlite", contents: Data(files.queue)))
        #expect(FileManager.default.createFile(atPath: directory + "/blobs.sqlite", contents: Data(files.blobs)))
        let queue = try SQLiteEnvelopeStore(path: directory + "/queue.sqlite", reserveBytes: 0, create: false, durability: .os)
        let waiting = try queue.nextForDelivery(mailbox: FuzzTargets.bob, excluding: [], limit: 10, now: FuzzTargets.now)
        #expect(waiting.map(\.precedence) == [.flash, .immediate, .priority])
        #expect(try queue.destinations() == ["hq"])
        let blobs = try SQLiteBlobStore(path: directory + "/blobs.sqlite", create: false, durability: .os)
        #expect(try blobs.readBlob(id: FuzzTargets.blobID, offset: 0, length: 100_000, now: FuzzTargets.now) == FuzzTargets.blobBytes)
    }

    @Test("committed inputs, seeds made in code, and 300 mutations of each (50 for relay-store: each run writes and opens two files)", arguments: FuzzTargets.names)
    func replay(target: String) {
        let mutations = target == "relay-store" ? 50 : 300
        var random = SplitMix64(seed: 0x5641_4C49_5345)
        let inputs = Self.committedInputs(target).map(\.1) + FuzzTargets.seeds(target) + [[], [0], [UInt8](repeating: 0xFF, count: 300)]
        for input in inputs {
            #expect(FuzzTargets.run(target, input))
            for _ in 0..<mutations {
                var mutated = input.isEmpty ? random.bytes(Int(random.next() % 64)) : input
                switch random.next() % 4 {
                case 0 where !mutated.isEmpty:
                    mutated[Int(random.next() % UInt64(mutated.count))] ^= UInt8(truncatingIfNeeded: random.next() | 1)
                case 1 where !mutated.isEmpty:
                    mutated.removeLast(Int(random.next() % UInt64(mutated.count)))
                case 2:
                    mutated.insert(contentsOf: random.bytes(Int(random.next() % 16)), at: Int(random.next() % UInt64(mutated.count + 1)))
                default:
                    mutated = random.bytes(Int(random.next() % 512))
                }
                FuzzTargets.run(target, mutated)
            }
        }
    }
}
