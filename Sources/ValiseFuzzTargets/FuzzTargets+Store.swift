import Foundation
import ValiseCrypto
import ValiseStore
import ValiseTestSupport

/// The relay's files as a damaged disk may leave them (target "relay-store"): a genuine queue
/// and blob store, made once in code, with the input's damage applied, then opened and read
/// through what the relay reads at its start and in service. Any damage may be refused
/// (`StoreError`, `.corrupt` when the file is at fault); none may trap. The fault row "relay
/// store: corrupt pages" draws from the same space at random; this target searches it.
extension FuzzTargets {
    /// The two files, each as SQLite left it when the store closed (the log folded in).
    struct StoreFiles: Sendable {
        let queue: [UInt8]
        let blobs: [UInt8]
    }

    static let now: UInt64 = 1_800_000_000
    static let bob = Mailbox("bob@geneva")
    static let storeIDs = (1...6).map { n in MessageID(bytes: [UInt8](repeating: UInt8(n), count: MessageID.byteCount))! }
    static let blobBytes = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    static var blobID: BlobID { BlobID(bytes: BLAKE2b.hash(blobBytes, outputByteCount: BlobID.byteCount))! }

    /// Envelopes for a local mailbox in each precedence, envelopes waiting for another relay,
    /// an acknowledged one (a remembered id), prekeys; a complete blob with a forward and a
    /// blob half uploaded. Nil only if the stores cannot be made.
    static let storeFiles: StoreFiles? = {
        let folder = TemporaryDirectory()
        // Removed when `folder` goes, at the end of this scope, not at its last use.
        defer { withExtendedLifetime(folder) {} }
        let directory = folder.path
        do {
            do {
                let queue = try SQLiteEnvelopeStore(path: directory + "/queue.sqlite", reserveBytes: 0, durability: .os)
                let precedences: [Precedence] = [.routine, .priority, .immediate, .flash]
                _ = try queue.accept(precedences.enumerated().map { index, precedence in
                    IncomingEnvelope(mailbox: bob, id: storeIDs[index], precedence: precedence, ttl: .day, body: [UInt8](repeating: UInt8(index), count: 96))
                } + [4, 5].map { index in
                    IncomingEnvelope(mailbox: Mailbox("carol@hq"), id: storeIDs[index], precedence: .priority, ttl: .week, destination: "hq", hops: 2, body: [7, 7, 7])
                }, now: now)
                _ = try queue.acknowledge([AcknowledgeRequest(mailbox: bob, ids: [storeIDs[0]])], now: now + 1)
                _ = try queue.storePrekeys(
                    mailbox: bob,
                    prekeys: StoredPrekeys(
                        signedPrekey: [UInt8](repeating: 1, count: 32), signedPrekeySignature: [UInt8](repeating: 2, count: 64),
                        envelopeKey: [UInt8](repeating: 3, count: StoredPrekeys.envelopeKeyByteCount), envelopeKeySignature: [UInt8](repeating: 4, count: 64),
                        updatedAt: now),
                    oneTimePrekeys: (0..<3).map { [UInt8](repeating: $0, count: 32) },
                    lastResortKEMPrekey: StoredKEMPrekey(key: [UInt8](repeating: 5, count: 1568), signature: [UInt8](repeating: 6, count: 64)),
                    oneTimeKEMPrekeys: [StoredKEMPrekey(key: [UInt8](repeating: 8, count: 1568), signature: [UInt8](repeating: 9, count: 64))])
                let blobs = try SQLiteBlobStore(path: directory + "/blobs.sqlite", durability: .os)
                _ = try blobs.beginBlob(
                    BlobDeclaration(id: blobID, size: UInt64(blobBytes.count), expiresAt: now + 3600, fetches: 1, forwards: ["hq": 2]),
                    maximumTotalBytes: .max, now: now)
                _ = try blobs.appendBlob(id: blobID, offset: 0, bytes: blobBytes, now: now)
                let half = BlobID(bytes: [UInt8](repeating: 0xB1, count: BlobID.byteCount))!
                _ = try blobs.beginBlob(BlobDeclaration(id: half, size: 9000, expiresAt: now + 60, fetches: 2), maximumTotalBytes: .max, now: now)
                _ = try blobs.appendBlob(id: half, offset: 0, bytes: [UInt8](repeating: 1, count: 4500), now: now)
            }
            // Both stores are closed here: SQLite folded each log into its file.
            guard let queue = FileManager.default.contents(atPath: directory + "/queue.sqlite"),
                  let blobs = FileManager.default.contents(atPath: directory + "/blobs.sqlite") else { return nil }
            return StoreFiles(queue: [UInt8](queue), blobs: [UInt8](blobs))
        } catch {
            return nil
        }
    }()

    /// The input's first byte picks the file (even: the queue, odd: the blobs); each 4 bytes
    /// after it overwrite one byte: a 24-bit offset (taken modulo the file's length) and the
    /// new value.
    static func relayStore(_ input: [UInt8]) {
        guard let files = storeFiles, let first = input.first else { return }
        let folder = TemporaryDirectory()
        // Removed when `folder` goes, at the end of this scope, not at its last use.
        defer { withExtendedLifetime(folder) {} }
        let directory = folder.path
        var damaged = first & 1 == 0 ? files.queue : files.blobs
        var index = 1
        while index + 4 <= input.count {
            let offset = (Int(input[index]) << 16 | Int(input[index + 1]) << 8 | Int(input[index + 2])) % damaged.count
            damaged[offset] = input[index + 3]
            index += 4
        }
        let queuePath = directory + "/queue.sqlite", blobsPath = directory + "/blobs.sqlite"
        guard FileManager.default.createFile(atPath: queuePath, contents: Data(first & 1 == 0 ? damaged : files.queue)),
              FileManager.default.createFile(atPath: blobsPath, contents: Data(first & 1 == 0 ? files.blobs : damaged)) else { return }
        if let queue = try? SQLiteEnvelopeStore(path: queuePath, reserveBytes: 0, create: false, durability: .os) {
            readQueue(queue)
        }
        if let blobs = try? SQLiteBlobStore(path: blobsPath, create: false, durability: .os) {
            readBlobs(blobs)
        }
    }

    /// What the relay reads of its queue at its start, in delivery and forwarding, for
    /// `valised status` and the operator's commands, then writes (a damaged file must not
    /// trap on a write either).
    static func readQueue(_ queue: SQLiteEnvelopeStore) {
        _ = try? queue.statistics(now: now)
        for mailbox in (try? queue.occupiedMailboxes()) ?? [] {
            _ = try? queue.nextForDelivery(mailbox: mailbox, excluding: [storeIDs[1]], limit: 10, now: now)
        }
        for destination in (try? queue.destinations()) ?? [] {
            _ = try? queue.nextForForwarding(destination: destination, excluding: [], limit: 10, now: now)
        }
        _ = try? queue.forwardingBacklog(now: now)
        _ = try? queue.mailboxBacklog(now: now)
        _ = try? queue.queued(mailbox: nil, limit: 50, now: now)
        _ = try? queue.states(of: storeIDs, now: now)
        _ = try? queue.takeBundles([bob, Mailbox("carol@hq")], takeOneTimePrekey: nil)
        _ = try? queue.takeBundles([bob], takeOneTimePrekey: { _ in true })
        _ = try? queue.oneTimePrekeyCount(mailbox: bob)
        _ = try? queue.deleteStalePrekeys([bob], current: PrekeyOwnership(signedPrekeys: { _, _ in false }, kemPrekey: { _, _, _ in false }))
        _ = try? queue.accept([IncomingEnvelope(mailbox: bob, id: storeIDs[2], precedence: .flash, ttl: .hour, body: [1])], now: now)
        _ = try? queue.acknowledge([AcknowledgeRequest(mailbox: bob, ids: Array(storeIDs[1...3]))], now: now)
        _ = try? queue.setHeld([storeIDs[4]], held: true)
        _ = try? queue.deleteByOperator([storeIDs[5]], now: now)
        _ = try? queue.expireCounts(now: now + 400 * 86_400)
        _ = try? queue.purge(mailbox: bob, now: now)
    }

    static func readBlobs(_ blobs: SQLiteBlobStore) {
        _ = try? blobs.blobStatistics(now: now)
        _ = try? blobs.blob(id: blobID, now: now)
        _ = try? blobs.readBlob(id: blobID, offset: 0, length: 100_000, now: now)
        _ = try? blobs.readBlob(id: blobID, offset: 1000, length: 10, now: now)
        for forward in (try? blobs.nextBlobForwards(destination: "hq", excluding: [], limit: 10, now: now)) ?? [] {
            _ = try? blobs.completeBlobForward(id: forward.id, destination: "hq", now: now)
        }
        _ = try? blobs.blobFetched(id: blobID, now: now)
        let half = BlobID(bytes: [UInt8](repeating: 0xB1, count: BlobID.byteCount))!
        _ = try? blobs.beginBlob(BlobDeclaration(id: half, size: 9000, expiresAt: now + 60, fetches: 2), maximumTotalBytes: 1 << 30, now: now)
        _ = try? blobs.appendBlob(id: half, offset: 4500, bytes: [UInt8](repeating: 2, count: 4500), now: now)
        _ = try? blobs.expireBlobs(now: now + 7200)
    }

    /// No damage, and a few bytes over the first pages of each file, to start a fuzzer
    /// where the schema and the rows are.
    static func storeSeeds() -> [[UInt8]] {
        [[0], [1], [0, 0, 0x10, 0x08, 0xFF], [0, 0, 0x20, 0x00, 0x0D, 0, 0x30, 0x10, 0x81], [1, 0, 0x10, 0x20, 0x00], [1, 0, 0x20, 0x40, 0xFF]]
    }
}
