import Foundation
public import ValiseDirectory
public import ValiseStore
public import ValiseWire
import ValiseCrypto

/// A relay's signed word on one sent message (docs/PROTOCOL.md, StatusQuery), once checked.
public enum RelayMessageStatus: Sendable, Equatable {
    case pending
    case expiredUndelivered(since: UInt64)
    case undeliverable(UndeliverableReason, since: UInt64)
    /// Custody passed to the relay of this name in the directory.
    case forwarded(to: String, since: UInt64)
    case unknown

    /// Checks one answer to a query with `nonce` about `asked`: for an id asked, signed by
    /// the relay's signing key from the directory over this nonce, consistent (a reason only
    /// with UNDELIVERABLE, a relay only with FORWARDED), of a state and reason this version
    /// knows, and naming a relay the directory lists. Anything else is not believed.
    public static func verify(
        _ status: WireMessageStatus, asked: [[UInt8]], nonce: [UInt8], relay: RelayRecord, relays: [String: RelayRecord]
    ) throws(ClientError) -> RelayMessageStatus {
        func refuse(_ why: String) -> ClientError {
            ClientError(kind: .verification, code: "relay-status", message: "the relay's status for a message \(why)")
        }
        guard asked.contains(Array(status.id)) else { throw refuse("answers an id this device did not ask about") }
        guard let signature = try? Signature(bytes: Array(status.signature)),
              relay.signingKey.isValidSignature(
                  signature, for: MessageStatusStatement.bytes(relayKey: relay.noiseKey, status: status, nonce: nonce),
                  purpose: MessageStatusStatement.purpose) else {
            throw refuse("is not signed by the relay's key over this query")
        }
        guard MessageStatusStatement.isConsistent(status) else {
            throw refuse("is inconsistent (a reason or a relay with a state that has none)")
        }
        switch status.state {
        case .pending: return .pending
        case .unknown: return .unknown
        case .expiredUndelivered: return .expiredUndelivered(since: status.time)
        case .undeliverable:
            guard let reason = UndeliverableReason(rawValue: status.reason.rawValue) else {
                throw refuse("gives a reason this version does not know (\(status.reason.rawValue))")
            }
            return .undeliverable(reason, since: status.time)
        case .forwarded:
            guard relays[status.forwardedTo] != nil else { throw refuse("names a relay the directory does not list") }
            return .forwarded(to: status.forwardedTo, since: status.time)
        case .unspecified, .UNRECOGNIZED:
            throw refuse("has a state this version does not know (\(status.state.rawValue))")
        }
    }
}
