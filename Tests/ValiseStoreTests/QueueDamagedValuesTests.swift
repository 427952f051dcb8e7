import Foundation
import GRDB
import Testing
import ValiseCrypto
import ValiseTestSupport
@testable import ValiseStore

/// A damaged page can give a column a value this program never writes: NULL-free but
/// negative, or of another type. The fault suite met one ("relay store: corrupt pages"):
/// valised trapped at start converting a negative `MIN(arrived_at)` to an unsigned integer.
/// Each read must refuse such a value as a damaged store (`.corrupt`, naming the column and
/// the file), never crash, and change nothing.
@Suite("Queue: a value a damaged page yields is refused as damage, never a crash")
struct QueueDamagedValuesTests {
    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case negativeArrival, negativeSince, sizeAsText, negativeExpiryOnDuplicate
        var testDescription: String { rawValue }

        /// The SQL that damages the file, and the read that must refuse it.
        var sql: String {
            switch self {
            case .negativeArrival: "UPDATE envelope SET arrived_at = -5"
            case .negativeSince: "UPDATE message SET since = -1"
            case .sizeAsText: "UPDATE envelope SET size = 'a size'"
            case .negativeExpiryOnDuplicate: "UPDATE message SET expires_at = -7"
            }
        }

        func read(_ store: SQLiteEnvelopeStore) throws(StoreError) {
            switch self {
            case .negativeArrival:
                _ = try store.statistics(now: queueEpoch)
                _ = try store.nextForDelivery(mailbox: Mailbox("bob@geneva"), excluding: [], limit: 10, now: queueEpoch)
            case .negativeSince:
                _ = try store.states(of: [messageID(1)], now: queueEpoch)
            case .sizeAsText:
                _ = try store.queued(mailbox: nil, limit: 10, now: queueEpoch)
            case .negativeExpiryOnDuplicate:
                _ = try store.accept([envelope("bob@geneva", 1)], now: queueEpoch)
            }
        }
    }

    @Test("each damaged column is refused .corrupt, with the file's path and the column's name", arguments: Damage.allCases)
    func refused(damage: Damage) throws {
        let file = QueueFile()
        do {
            let store = try file.open()
            _ = try store.accept([envelope("bob@geneva", 1), envelope("bob@geneva", 2, .flash)], now: queueEpoch)
        }
        let database = try DatabaseQueue(path: file.path)
        try database.write { db in try db.execute(sql: damage.sql) }
        try database.close()

        let store = try file.open()
        do {
            try damage.read(store)
            Issue.record("the damaged value was read without an error")
        } catch {
            #expect(error.kind == .corrupt, "\(error)")
            #expect(error.message.contains(file.path) && error.message.contains("damaged"), "\(error.message)")
        }
    }

    @Test("a blob whose stored size is negative: the blob statistics are refused .corrupt, and a new blob is too")
    func blobSize() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("blobs.sqlite")
        let bytes = Random.bytes(count: 1000)
        let id = BlobID(bytes: BLAKE2b.hash(bytes, outputByteCount: BlobID.byteCount))!
        do {
            let store = try SQLiteBlobStore(path: path)
            _ = try store.beginBlob(BlobDeclaration(id: id, size: 1000, expiresAt: queueEpoch + 60, fetches: 1), maximumTotalBytes: .max, now: queueEpoch)
        }
        let database = try DatabaseQueue(path: path)
        try database.write { db in try db.execute(sql: "UPDATE blob SET size = -1000") }
        try database.close()

        let store = try SQLiteBlobStore(path: path)
        #expect { _ = try store.blobStatistics(now: queueEpoch) } throws: { ($0 as? StoreError)?.kind == .corrupt }
        let other = Random.bytes(count: 10)
        let declaration = BlobDeclaration(id: BlobID(bytes: BLAKE2b.hash(other, outputByteCount: BlobID.byteCount))!, size: 10, expiresAt: queueEpoch + 60, fetches: 1)
        #expect { _ = try store.beginBlob(declaration, maximumTotalBytes: .max, now: queueEpoch) } throws: { ($0 as? StoreError)?.kind == .corrupt }
    }
}
