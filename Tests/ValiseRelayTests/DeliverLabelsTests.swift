import Testing
@testable import ValiseRelay
import ValiseStore
import ValiseWire

/// A Deliver carries the TTL class the relay applied and the one the sender asked for: the
/// sealed envelope's labels bind the latter, so the recipient needs it to open the envelope.
@Suite("Deliver: the TTL classes applied and asked for")
struct DeliverLabelsTests {
    @Test("a month asked and a week applied (the relay's maximum) are both delivered; DEFAULT asked is delivered as DEFAULT")
    func bothClasses() throws {
        let id = try #require(MessageID(bytes: [UInt8](repeating: 5, count: 16)))
        for (asked, applied, expected) in [(UInt8(4), TTLClass.week, WireTTLClass.month), (0, .day, .default), (1, .hour, .hour)] {
            let stored = StoredEnvelope(
                sequence: 1, mailbox: Mailbox("bob@nairobi"), id: id, precedence: .immediate, arrivedAt: 1_000,
                expiresAt: 1_000 + applied.seconds, body: [1, 2, 3], requestedTTL: asked)
            guard case .deliver(let deliver)? = RelayRequestProcessor.deliver(stored).body else {
                Issue.record("not a Deliver")
                continue
            }
            #expect(deliver.requestedTtl == expected)
            #expect(deliver.ttl == WireTTLClass(rawValue: applied.rawValue + 1))
            #expect(deliver.precedence == .immediate)
        }
    }
}
