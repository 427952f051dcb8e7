import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseStore
import ValiseWire

/// Hands out prekey bundles (docs/PROTOCOL.md, "Prekeys"). Two limits, per device key
/// across its connections: the members it may ask for per minute (each a read of the
/// store; past it RATE_LIMITED), and the one-time prekeys it may take (at most one of each
/// member's an hour, and so many in all, an X25519 and a KEM one counting as one; past them
/// the bundle comes without a one-time X25519 prekey and with the last-resort KEM prekey).
final class PrekeyDispenser: Sendable {
    /// A member asked for, as the request named it.
    struct Target: Sendable {
        let asked: String
        /// The active member of that name and its identity key (from the directory); nil
        /// when there is none.
        let member: (name: MemberName, identityKey: SigningPublicKey)?
    }

    /// What to do with a fetch: answer now, or run `work` (store access) off the event loop.
    enum Start {
        case reply(WireRelayMessage)
        case work(@Sendable () throws -> WireRelayMessage)
    }

    private let store: any PrekeyStore
    private let members: DeviceRateLimiter
    private let oneTimePrekeys: OneTimePrekeyAllowance
    private let counters: LimitCounters

    convenience init(store: any PrekeyStore, limits: RelayConfiguration.Limits, counters: LimitCounters) {
        self.init(
            store: store, members: .perMinute(limits.prekeyMembersPerMinute, burst: limits.prekeyMemberBurst),
            oneTimePrekeys: OneTimePrekeyAllowance(perMinute: limits.oneTimePrekeysPerMinute, burst: limits.oneTimePrekeyBurst),
            counters: counters)
    }

    init(store: any PrekeyStore, members: DeviceRateLimiter, oneTimePrekeys: OneTimePrekeyAllowance, counters: LimitCounters) {
        self.store = store
        self.members = members
        self.oneTimePrekeys = oneTimePrekeys
        self.counters = counters
    }

    /// Starts answering `device`'s fetch of `targets`: the member rate is decided here, on
    /// the event loop; each one-time prekey in the store's transaction, and only where the
    /// member has one to give (a fetch before the member published, or after it ran out,
    /// does not use up the device's hour).
    func fetch(requestID: UInt64, device: AgreementPublicKey, targets: [Target], envelopeKeyOnly: Bool) -> Start {
        guard members.allow(device, cost: targets.count) else {
            counters.count(.prekeyFetchRate)
            return .reply(RelayRequestProcessor.error(requestID, RelayError(
                .rateLimited, code: "rate-limited", message: "too many prekey bundles fetched; try again in a minute")))
        }
        let known = targets.compactMap(\.member)
        let (store, allowance, counters) = (store, oneTimePrekeys, counters)
        return .work {
            var granted: [MemberName] = []
            let take: ((Int) -> Bool)? = envelopeKeyOnly ? nil : { index in
                switch allowance.reserve(device: device, member: known[index].name) {
                case .granted:
                    granted.append(known[index].name)
                    return true
                case .alreadyHanded, .tableFull: counters.count(.oneTimePrekeyPerMember)
                case .deviceRate: counters.count(.oneTimePrekeyRate)
                }
                return false
            }
            let records: [PrekeyBundleRecord?]
            do {
                records = try store.takeBundles(known.map { Mailbox($0.name.value) }, takeOneTimePrekey: take)
            } catch {
                // Nothing was handed out: the grants go back.
                for member in granted { allowance.release(device: device, member: member) }
                throw error
            }
            return Self.answer(requestID, targets: targets, records: records, envelopeKeyOnly: envelopeKeyOnly)
        }
    }

    /// Charges `device` for `count` members fetched through another relay (proxied: that
    /// relay hands out the keys); false, and counted, past the device's rate.
    func allowProxied(device: AgreementPublicKey, count: Int) -> Bool {
        guard members.allow(device, cost: count) else {
            counters.count(.prekeyFetchRate)
            return false
        }
        return true
    }

    /// The answer: a bundle per target, in order; an unknown member or one without
    /// prekeys gets only its name and the error.
    private static func answer(_ requestID: UInt64, targets: [Target], records: [PrekeyBundleRecord?], envelopeKeyOnly: Bool) -> WireRelayMessage {
        var answer = WirePrekeyBundles()
        var found = records.makeIterator()
        for target in targets {
            var bundle = WirePrekeyBundle()
            bundle.member = target.asked
            if let member = target.member, let record = found.next() {
                if let record {
                    bundle.identityKey = Data(member.identityKey.bytes)
                    bundle.envelopeKemKey = Data(record.prekeys.envelopeKey)
                    bundle.envelopeKemKeySignature = Data(record.prekeys.envelopeKeySignature)
                    if !envelopeKeyOnly {
                        bundle.signedPrekey = Data(record.prekeys.signedPrekey)
                        bundle.signedPrekeySignature = Data(record.prekeys.signedPrekeySignature)
                        bundle.oneTimePrekey = Data(record.oneTimePrekey ?? [])
                        bundle.oneTimePrekeysLeft = UInt32(record.oneTimePrekeysLeft)
                        if let kem = record.kemPrekey {
                            var prekey = WireKEMPrekey()
                            prekey.key = Data(kem.key)
                            prekey.signature = Data(kem.signature)
                            bundle.kemPrekey = prekey
                            bundle.kemPrekeyLastResort = record.kemPrekeyIsLastResort
                        }
                        bundle.oneTimeKemPrekeysLeft = UInt32(record.oneTimeKEMPrekeysLeft)
                    }
                } else {
                    bundle.error = .noPrekeys
                }
            } else {
                bundle.error = .unknownRecipient
            }
            answer.bundles.append(bundle)
        }
        return RelayRequestProcessor.message(requestID, .prekeyBundles(answer))
    }
}
