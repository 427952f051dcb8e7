import Foundation
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// The client believes a relay's status only as signed: the state, the reason and the relay
/// are all under the signature, and inconsistent statements are refused even when signed.
@Suite("Relay message status: what the client believes")
struct RelayMessageStatusTests {
    let signing = SigningKey()
    let noise = AgreementPrivateKey()
    let id: [UInt8] = Array(repeating: 0x42, count: 16)
    let nonce: [UInt8] = Array(repeating: 0x17, count: 32)

    var relay: RelayRecord {
        RelayRecord(
            name: "hq", address: "127.0.0.1:7400", noiseKey: noise.publicKey, signingKey: signing.publicKey,
            proof: signing.signature(for: [], purpose: SignaturePurpose("test")))
    }

    func status(_ state: WireMessageStatus.MessageState, _ reason: WireMessageStatus.UndeliverableReason = .unspecified, forwardedTo: String = "", time: UInt64 = 1_800_000_000) -> WireMessageStatus {
        var status = WireMessageStatus()
        status.id = Data(id)
        status.state = state
        status.reason = reason
        status.time = time
        status.forwardedTo = forwardedTo
        return status
    }

    func signed(_ status: WireMessageStatus) -> WireMessageStatus {
        var signed = status
        signed.signature = Data(signing.signature(
            for: MessageStatusStatement.bytes(relayKey: noise.publicKey, status: status, nonce: nonce), purpose: MessageStatusStatement.purpose).bytes)
        return signed
    }

    func verify(_ status: WireMessageStatus, relays: [String: RelayRecord]? = nil) throws(ClientError) -> RelayMessageStatus {
        try RelayMessageStatus.verify(status, asked: [id], nonce: nonce, relay: relay, relays: relays ?? ["hq": relay])
    }

    @Test("a signed UNDELIVERABLE (recipient revoked) is believed, with its time")
    func undeliverable() throws {
        #expect(try verify(signed(status(.undeliverable, .recipientRevoked))) == .undeliverable(.recipientRevoked, since: 1_800_000_000))
    }

    @Test("a signature over another state, another reason, another time or another relay is refused")
    func signatureCoversEveryField() {
        var otherState = signed(status(.undeliverable, .recipientRevoked))
        otherState.state = .expiredUndelivered
        otherState.reason = .unspecified
        var otherReason = signed(status(.undeliverable, .recipientRevoked))
        otherReason.reason = .deletedByOperator
        var otherTime = signed(status(.undeliverable, .recipientRevoked))
        otherTime.time += 1
        let geneva = RelayRecord(name: "geneva", address: "g:1", noiseKey: noise.publicKey, signingKey: signing.publicKey, proof: relay.proof)
        var otherRelay = signed(status(.forwarded, forwardedTo: "hq"))
        otherRelay.forwardedTo = "geneva"
        var otherNonce = signed(status(.undeliverable, .recipientRevoked))
        otherNonce.signature = Data(signing.signature(
            for: MessageStatusStatement.bytes(relayKey: noise.publicKey, status: status(.undeliverable, .recipientRevoked), nonce: Array(repeating: 1, count: 32)),
            purpose: MessageStatusStatement.purpose).bytes)
        for (name, tampered) in [("state", otherState), ("reason", otherReason), ("time", otherTime), ("relay", otherRelay), ("nonce", otherNonce)] {
            #expect(throws: ClientError.self, "another \(name) was believed") {
                try verify(tampered, relays: ["hq": relay, "geneva": geneva])
            }
        }
    }

    @Test("the version 1 statement (no version byte, no reason) does not verify")
    func versionOneRefused() {
        var old = status(.expiredUndelivered)
        var writer = ByteWriter(capacity: 96)
        writer.write(noise.publicKey.bytes)
        writer.write(id)
        writer.write(UInt8(2))
        writer.write(UInt64(1_800_000_000))
        writer.write(nonce)
        old.signature = Data(signing.signature(for: writer.bytes, purpose: MessageStatusStatement.purpose).bytes)
        #expect(throws: ClientError.self) { try verify(old) }
    }

    @Test("signed but inconsistent, unknown or unasked: a reason without UNDELIVERABLE, UNDELIVERABLE without one, a relay outside the directory, an id not asked")
    func signedNonsenseRefused() throws {
        let cases: [(String, WireMessageStatus)] = [
            ("expired with a reason", signed(status(.expiredUndelivered, .recipientRevoked))),
            ("undeliverable without a reason", signed(status(.undeliverable))),
            ("undeliverable with a relay", signed(status(.undeliverable, .recipientRevoked, forwardedTo: "hq"))),
            ("forwarded without a relay", signed(status(.forwarded))),
            ("forwarded to a relay not in the directory", signed(status(.forwarded, forwardedTo: "elsewhere"))),
            ("an unknown reason", signed(status(.undeliverable, .UNRECOGNIZED(9)))),
            ("an unknown state", signed(status(.UNRECOGNIZED(9)))),
        ]
        for (name, statement) in cases {
            #expect(throws: ClientError.self, "\(name) was believed") { try verify(statement) }
        }
        #expect(throws: ClientError.self, "an id not asked was believed") {
            try RelayMessageStatus.verify(
                signed(status(.undeliverable, .recipientRevoked)), asked: [Array(repeating: 0, count: 16)], nonce: nonce, relay: relay, relays: ["hq": relay])
        }
        #expect(try verify(signed(status(.forwarded, forwardedTo: "hq"))) == .forwarded(to: "hq", since: 1_800_000_000))
    }
}
