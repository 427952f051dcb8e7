import Foundation
import ValiseCrypto
import ValiseDirectory
@testable import ValiseRelay
import ValiseStore
import ValiseWire

/// A small organisation for the relay-link state machines: one admin (threshold 1), relays
/// hq, jakarta and geneva, alice homed at jakarta, bob at geneva, carol at the default (hq),
/// and whatever a test appends. Snapshots are as each relay would hold them.
struct LinkFixture {
    static let epoch: UInt64 = 1_767_225_600
    static let relayNames = ["hq", "jakarta", "geneva"]

    let admin = SigningKey()
    let adminTransport = AgreementPrivateKey()
    var relayKeys: [String: (noise: AgreementPrivateKey, signing: SigningKey)] = [:]
    var entries: [DirectoryEntry] = []

    init() {
        let genesis = EntryBody.genesis(Genesis(
            organisation: "Ministry", admins: AdminSet(admins: [
                AdminRecord(name: "registrar", signingKey: admin.publicKey, transportKey: adminTransport.publicKey),
            ], threshold: 1), freshness: .standard))
        entries = [DirectoryEntry(sequence: 0, previousHash: .zero, timestamp: Self.epoch, body: genesis).signed(by: admin)]
        for name in Self.relayNames {
            let keys = (noise: AgreementPrivateKey(), signing: SigningKey())
            relayKeys[name] = keys
            append(.addRelay(RelayPublicFile(noiseKey: keys.noise.publicKey, signingKey: keys.signing).record(
                name: name, address: "\(name).example:7400")))
        }
        enroll("carol@hq", home: nil)
        enroll("alice@jakarta", home: "jakarta")
        enroll("bob@geneva", home: "geneva")
    }

    mutating func append(_ body: EntryBody) {
        let head = entries[entries.count - 1]
        entries.append(DirectoryEntry(
            sequence: head.sequence + 1, previousHash: head.hash, timestamp: head.timestamp + 60, body: body).signed(by: admin))
    }

    mutating func enroll(_ member: String, home: String?) {
        let request = MemberRequest.enrollment(
            member: try! MemberName(member), identityKey: SigningKey(), transportKey: AgreementPrivateKey().publicKey,
            created: Self.epoch)
        let enrollment = Enrollment(request: request, mission: "Embassy", role: "attaché")
        append(home.map { .enrollAtHome(enrollment, home: $0) } ?? .enroll(enrollment))
    }

    var now: UInt64 { entries[entries.count - 1].timestamp + 60 }

    /// The first `count` entries (all by default) as relay `relay` holds them.
    func snapshot(as relay: String, count: Int? = nil) -> RelayDirectory.Snapshot {
        let held = Array(entries.prefix(count ?? entries.count))
        let verifier = try! DirectoryVerifier.verify(held, pinnedGenesis: entries[0].hash, now: now)
        return RelayDirectory.Snapshot(verifier: verifier, entries: held, checkpoint: nil, relayKey: relayKeys[relay]!.noise.publicKey)
    }

    static func envelope(_ mailbox: String, precedence: Precedence = .routine, arrivedAt: UInt64, expiresAt: UInt64) -> OutgoingEnvelope {
        OutgoingEnvelope(
            sequence: 1, destination: "geneva", mailbox: Mailbox(mailbox), id: MessageID(bytes: Random.bytes(count: 16))!,
            precedence: precedence, requestedTTL: 2, arrivedAt: arrivedAt, expiresAt: expiresAt, hops: 1,
            body: [UInt8](repeating: 7, count: 4096))
    }
}
