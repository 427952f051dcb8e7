import Foundation
import GRDB
import Testing
import ValiseCrypto
import ValiseTestSupport
@testable import ValiseStore

/// Not the queue's contract (no store kinds): the client's LocalStore is SQLite only.
///
/// The client's outbox keeps why a message is undeliverable and which relay took custody of
/// a forwarded one (docs/PROTOCOL.md, "Local message store"); stores written before open.
@Suite("Local store: outbox outcomes and the upgrade that added them")
struct LocalStoreOutcomeTests {
    let directory = TemporaryDirectory()
    var path: String { directory.file("messages.sqlite") }
    static let ids: [[UInt8]] = [Array(repeating: 1, count: 16), Array(repeating: 2, count: 16), Array(repeating: 3, count: 16)]

    static func item(_ id: [UInt8]) -> OutboxItem {
        OutboxItem(id: id, kind: .message, precedence: 0, ttl: 2, createdAt: 100, notBefore: 100, data: Array("{}".utf8))
    }

    @Test("an undeliverable item keeps its reason, a forwarded one its relay (sealed: not in the file), and both go on the next change")
    func outcomes() throws {
        let store = try LocalStore(path: path, key: SymmetricKey())
        try store.write("fill") { tx in
            for id in Self.ids { try tx.addOutbox(Self.item(id)) }
            try tx.setOutboxState(id: Self.ids[0], .failed, now: 200, reason: .recipientRevoked)
            try tx.setOutboxState(id: Self.ids[1], .forwarded, now: 200, forwardedTo: "geneva-relay")
            try tx.setOutboxState(id: Self.ids[2], .failed, now: 200)
        }
        let items = try store.read("read") { tx in try Self.ids.map { try tx.outboxItem(id: $0) } }
        #expect(items.map { $0?.state } == [.failed, .forwarded, .failed])
        #expect(items.map { $0?.undeliverableReason } == [.recipientRevoked, nil, nil])
        #expect(items.map { $0?.forwardedTo } == [nil, "geneva-relay", nil])

        try store.write("deliver") { tx in try tx.setOutboxState(id: Self.ids[1], .delivered, now: 300) }
        let delivered = try store.read("read") { tx in try tx.outboxItem(id: Self.ids[1]) }
        #expect(delivered?.state == .delivered && delivered?.forwardedTo == nil)
        store.close()
        let bytes = ["", "-wal"].flatMap { (FileManager.default.contents(atPath: path + $0).map { [UInt8]($0) }) ?? [] }
        #expect(bytes.firstRange(of: Array("geneva-relay".utf8)) == nil, "the relay's name is in the store in the clear")
    }

    @Test("a store written before outcomes were kept opens; its undeliverable item reads with no reason")
    func upgrade() throws {
        let key = SymmetricKey()
        // A value sealed under this key for the outbox row (the associated data names the
        // table and row, not the file).
        let helper = try LocalStore(path: directory.file("helper.sqlite"), key: key)
        let sealed = helper.seal(Array("{}".utf8), table: "outbox", row: Self.ids[0])
        helper.close()
        // The store as the previous version left it: migration v1 only, an item it gave up on.
        let pool = try DatabasePool(path: path)
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA application_id = \(LocalStore.fileKind.applicationID)") }
        try LocalStore.migrator.migrate(pool, upTo: "v1")
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO outbox (id, kind, state, precedence, ttl, created_at, not_before, changed_at, data) VALUES (?, 1, 5, 0, 2, 100, 100, 100, ?)",
                arguments: [Data(Self.ids[0]), sealed])
        }
        try pool.close()

        let reopened = try LocalStore(path: path, key: key)
        defer { reopened.close() }
        let item = try reopened.read("read") { tx in try tx.outboxItem(id: Self.ids[0]) }
        #expect(item?.state == .failed && item?.undeliverableReason == nil && item?.forwardedTo == nil)
        try reopened.write("mark") { tx in try tx.setOutboxState(id: Self.ids[0], .failed, now: 200, reason: .deletedByOperator) }
        #expect(try reopened.read("read") { tx in try tx.outboxItem(id: Self.ids[0]) }?.undeliverableReason == .deletedByOperator)
    }
}
