import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// Statuses: what the relays say, signed, of messages with no receipt yet.
extension MessageSync {
    /// A status signed by the home relay, or, for a message it forwarded, passed on from the
    /// relay that took custody (docs/PROTOCOL.md, StatusQuery): checked with the home relay's
    /// key, else with the key of the relay this device recorded as having custody, else
    /// with each other relay the directory lists (a relay's answer names no signer).
    static func verify(
        _ statement: WireMessageStatus, asked: [[UInt8]], nonce: [UInt8], home: RelayRecord, custody: String?, relays: [String: RelayRecord]
    ) throws(ClientError) -> RelayMessageStatus {
        do {
            return try RelayMessageStatus.verify(statement, asked: asked, nonce: nonce, relay: home, relays: relays)
        } catch {
            // Only a final state comes from another relay; a FORWARDED is the home relay's own.
            guard statement.state == .expiredUndelivered || statement.state == .undeliverable else { throw error }
            let others = (custody.flatMap { relays[$0] }.map { [$0] } ?? [])
                + relays.values.filter { $0.name != home.name && $0.name != custody }.sorted { $0.name < $1.name }
            for other in others {
                if let checked = try? RelayMessageStatus.verify(statement, asked: asked, nonce: nonce, relay: other, relays: relays) {
                    return checked
                }
            }
            throw error
        }
    }

    /// Asks the relay about messages with no receipt yet (accepted, or forwarded: the relay
    /// may learn more), and records what its checked, signed statuses say.
    public func checkStatuses(now: UInt64) async throws(ClientError) {
        let waiting = try messenger.storeOperation("read the outbox", write: false) { tx in try tx.outbox([.accepted, .forwarded], kind: .message) }
        for chunk in stride(from: 0, to: waiting.count, by: 100) {
            let ids = waiting[chunk..<min(chunk + 100, waiting.count)].map(\.id)
            var query = WireStatusQuery()
            query.ids = ids.map { Data($0) }
            let nonce = Random.bytes(count: 32)
            query.nonce = Data(nonce)
            let answer = try await client.request(.statusQuery(query))
            guard case .status(let status) = answer.body else {
                throw .failure("relay-protocol", "the relay answered a status query with something else")
            }
            let custody = Dictionary(waiting.compactMap { item in item.forwardedTo.map { (Data(item.id), $0) } }, uniquingKeysWith: { first, _ in first })
            // Pending and unknown change nothing here, so only the others are checked.
            for statement in status.statuses where [.expiredUndelivered, .undeliverable, .forwarded].contains(statement.state) {
                let checked: RelayMessageStatus
                do {
                    checked = try Self.verify(statement, asked: ids, nonce: nonce, home: relay, custody: custody[statement.id], relays: messenger.state.relays)
                } catch {
                    report.notices.append("\(error.message): ignored")
                    continue
                }
                guard try messenger.record(checked, id: Array(statement.id), now: now) else { continue }
                switch checked {
                case .expiredUndelivered: report.expired += 1
                case .undeliverable(let reason, _): report.undeliverable[reason, default: 0] += 1
                case .forwarded: report.forwarded += 1
                case .pending, .unknown: break
                }
            }
        }
    }
}
