import Foundation
import Testing
import ValiseCrypto
import ValiseWire

/// The relay's signed message status (docs/PROTOCOL.md, StatusQuery): the signed bytes as
/// fixed vectors, and the rules that tie a reason to UNDELIVERABLE and a relay to FORWARDED.
@Suite("Message status statement: version 2 bytes and consistency")
struct MessageStatusStatementTests {
    static let relayKey = try! AgreementPublicKey(bytes: (1...32).map { UInt8($0) })
    static let id: [UInt8] = (0xA0...0xAF).map { UInt8($0) }
    static let nonce: [UInt8] = (0..<16).map { UInt8($0) }
    static let keyHex = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
    static let idHex = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
    static let nonceHex = "000102030405060708090a0b0c0d0e0f"

    @Test("UNDELIVERABLE (recipient revoked) at 1,800,000,000: u8 2 ‖ key ‖ id ‖ 04 ‖ 01 ‖ u64 time ‖ 00 ‖ nonce")
    func undeliverableVector() {
        let bytes = MessageStatusStatement.bytes(
            relayKey: Self.relayKey, id: Self.id, state: 4, reason: 1, time: 1_800_000_000, forwardedTo: "", nonce: Self.nonce)
        #expect(Hex.encode(bytes) == "02" + Self.keyHex + Self.idHex + "04" + "01" + "000000006b49d200" + "00" + Self.nonceHex)
    }

    @Test("FORWARDED to geneva: the relay's name with its length byte before the nonce")
    func forwardedVector() {
        let bytes = MessageStatusStatement.bytes(
            relayKey: Self.relayKey, id: Self.id, state: 5, reason: 0, time: 1_800_000_000, forwardedTo: "geneva", nonce: Self.nonce)
        #expect(Hex.encode(bytes) == "02" + Self.keyHex + Self.idHex + "05" + "00" + "000000006b49d200" + "06" + "67656e657661" + Self.nonceHex)
    }

    @Test("the bytes of a WireMessageStatus are those of its fields")
    func fromMessage() {
        var status = WireMessageStatus()
        status.id = Data(Self.id)
        status.state = .undeliverable
        status.reason = .deletedByOperator
        status.time = 7
        #expect(MessageStatusStatement.bytes(relayKey: Self.relayKey, status: status, nonce: Self.nonce)
            == MessageStatusStatement.bytes(relayKey: Self.relayKey, id: Self.id, state: 4, reason: 3, time: 7, forwardedTo: "", nonce: Self.nonce))
    }

    @Test("a reason only with UNDELIVERABLE (which needs one); a relay of 1 to 64 bytes only with FORWARDED")
    func consistency() {
        func status(_ state: WireMessageStatus.MessageState, _ reason: WireMessageStatus.UndeliverableReason = .unspecified, _ relay: String = "") -> WireMessageStatus {
            var status = WireMessageStatus()
            status.state = state
            status.reason = reason
            status.forwardedTo = relay
            return status
        }
        #expect(MessageStatusStatement.isConsistent(status(.undeliverable, .recipientRevoked)))
        #expect(MessageStatusStatement.isConsistent(status(.forwarded, .unspecified, "geneva")))
        #expect(MessageStatusStatement.isConsistent(status(.pending)))
        #expect(MessageStatusStatement.isConsistent(status(.expiredUndelivered)))
        #expect(!MessageStatusStatement.isConsistent(status(.undeliverable)))
        #expect(!MessageStatusStatement.isConsistent(status(.undeliverable, .recipientRevoked, "geneva")))
        #expect(!MessageStatusStatement.isConsistent(status(.forwarded)))
        #expect(!MessageStatusStatement.isConsistent(status(.forwarded, .recipientRevoked, "geneva")))
        #expect(!MessageStatusStatement.isConsistent(status(.forwarded, .unspecified, String(repeating: "g", count: 65))))
        #expect(!MessageStatusStatement.isConsistent(status(.pending, .recipientRevoked)))
        #expect(!MessageStatusStatement.isConsistent(status(.expiredUndelivered, .unspecified, "geneva")))
    }
}
