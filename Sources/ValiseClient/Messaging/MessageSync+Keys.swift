import Foundation
import ValiseDirectory
import ValiseWire

/// Fetching other members' keys before encrypting for them: whole bundles where a session
/// must start (each takes one of the member's one-time prekeys), only the envelope key
/// where the session exists (none taken), several members per request.
extension MessageSync {
    /// Members one prekey fetch names at most (the relay refuses more: docs/PROTOCOL.md).
    static let membersPerFetch = 100

    /// What fetching one member's keys came to.
    enum KeysOutcome {
        case keys(Messenger.Bundle)
        /// Not now: the member's messages wait in the outbox; the notice says why.
        case wait(String)
        /// The relay knows no active member of that name.
        case unknown
    }

    /// Fetches the keys `needs` names, in batches, and checks every one against this
    /// device's directory. A relay's refusal of a batch makes its members wait; a lost
    /// connection throws.
    func fetchKeys(_ needs: [(name: MemberName, needs: Messenger.KeysNeeded)]) async throws(ClientError) -> [MemberName: KeysOutcome] {
        // A member needing a bundle for one message gets the bundle for all of them.
        let bundles = Self.unique(needs.filter { $0.needs == .bundle }.map(\.name))
        let envelopeKeys = Self.unique(needs.filter { $0.needs == .envelopeKey }.map(\.name)).filter { !bundles.contains($0) }
        var outcomes: [MemberName: KeysOutcome] = [:]
        for (names, envelopeKeyOnly) in [(bundles, false), (envelopeKeys, true)] {
            for start in stride(from: 0, to: names.count, by: Self.membersPerFetch) {
                let batch = Array(names[start..<min(start + Self.membersPerFetch, names.count)])
                var fetch = WirePrekeyFetch()
                fetch.members = batch.map(\.value)
                fetch.envelopeKeyOnly = envelopeKeyOnly
                var answer: WireRelayMessage?
                var backoff = Self.prekeyFetchBackoff[...]
                while answer == nil {
                    do {
                        answer = try await client.request(.prekeyFetch(fetch))
                    } catch where error.code == "relay-\(WireErrorCode.rateLimited)" {
                        // The relay's rate for fetches is not in its Welcome: wait for its
                        // bucket to refill, a bounded number of times, rather than give up.
                        if let seconds = backoff.popFirst() {
                            try await Self.sleep(nanoseconds: seconds * 1_000_000_000)
                            continue
                        }
                        for name in batch {
                            outcomes[name] = .wait("the relay asks this device to fetch keys more slowly; messages to \(name) stay in the outbox for the next sync")
                        }
                        break
                    } catch where Self.isRefusal(error) {
                        for name in batch { outcomes[name] = .wait("the relay did not hand out \(name)'s keys yet (\(error.message)); the message stays in the outbox") }
                        break
                    }
                }
                guard let answer else { continue }
                guard case .prekeyBundles(let answered) = answer.body, answered.bundles.count == batch.count,
                      zip(answered.bundles, batch).allSatisfy({ $0.member == $1.value }) else {
                    throw .failure("relay-protocol", "the relay answered a prekey fetch with something else")
                }
                for (bundle, name) in zip(answered.bundles, batch) {
                    outcomes[name] = try outcome(bundle, name, envelopeKeyOnly: envelopeKeyOnly)
                }
            }
        }
        return outcomes
    }

    private func outcome(_ bundle: WirePrekeyBundle, _ name: MemberName, envelopeKeyOnly: Bool) throws(ClientError) -> KeysOutcome {
        switch bundle.error {
        case .unspecified: break
        case .unknownRecipient: return .unknown
        case .noPrekeys:
            return .wait("waiting: \(name) has no keys on the relay yet (their device has not synced since enrolment); the message stays in the outbox")
        default:
            return .wait("the relay did not hand out \(name)'s keys (\(bundle.error)); the message stays in the outbox")
        }
        do {
            if envelopeKeyOnly {
                return .keys(try messenger.checkEnvelopeKey(
                    member: name, identityKey: Array(bundle.identityKey), envelopeKey: Array(bundle.envelopeKemKey),
                    envelopeKeySignature: Array(bundle.envelopeKemKeySignature)))
            }
            return .keys(try messenger.checkBundle(
                member: name, identityKey: Array(bundle.identityKey), signedPrekey: Array(bundle.signedPrekey),
                signedPrekeySignature: Array(bundle.signedPrekeySignature), envelopeKey: Array(bundle.envelopeKemKey),
                envelopeKeySignature: Array(bundle.envelopeKemKeySignature), oneTimePrekey: Array(bundle.oneTimePrekey),
                kemPrekey: Array(bundle.kemPrekey.key), kemPrekeySignature: Array(bundle.kemPrekey.signature),
                kemPrekeyLastResort: bundle.kemPrekeyLastResort))
        } catch where error.kind == .verification {
            return .wait("not sent to \(name) yet: \(error.message)")
        }
    }

    /// The names once each, in their first order.
    private static func unique(_ names: [MemberName]) -> [MemberName] {
        var seen: Set<MemberName> = []
        return names.filter { seen.insert($0).inserted }
    }
}
