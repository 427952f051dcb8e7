import Foundation
import Testing
import ValiseCrypto
import ValiseTestSupport
@testable import ValiseSession

/// The other direction of the session vectors: initial messages made by Valise (whose
/// ML-KEM encapsulation draws its own randomness, so they cannot be known answers), read by
/// scripts/interop/session.py as the responder (`session.py read`, run by
/// scripts/interop/check). Fixtures/session-started-by-valise.json is written by the test
/// below when VALISE_WRITE_SESSION_STARTS names the file (Fixtures/SOURCE.md).
@Suite("End-to-end sessions: initial messages Valise made, for the independent implementation")
struct SessionInteropTests {
    /// Bob's keys for one start: fixed, from SplitMix64 seeds.
    struct Start {
        let name: String
        let pair: SessionPair
        let oneTime: Bool
        let lastResort: Bool

        var kem: MLKEM1024PrivateKey { lastResort ? pair.bobLastResortKEMPrekey : pair.bobKEMPrekey }
        var plaintext: [UInt8] { Array("\(name): made by Valise, read by session.py".utf8) }

        var prekeys: Session.Prekeys {
            Session.Prekeys(
                signedPrekey: { [pair] in $0 == pair.bobSignedPrekey.publicKey ? pair.bobSignedPrekey : nil },
                oneTimePrekey: { [pair] in $0 == pair.bobOneTimePrekey.publicKey ? pair.bobOneTimePrekey : nil },
                kemPrekey: { [kem, lastResort] in $0 == PQXDH.kemPrekeyID(kem.publicKey) ? (kem, lastResort ? .lastResort : .oneTime) : nil },
                seenBefore: { _ in false })
        }
    }

    static let starts = [
        Start(name: "one-time prekeys", pair: SessionPair(seed: 51), oneTime: true, lastResort: false),
        Start(name: "last resort", pair: SessionPair(seed: 52), oneTime: false, lastResort: true),
    ]

    static func secret(_ key: AgreementPrivateKey) -> String { Hex.encode(key.rawRepresentation.withUnsafeBytes { Array($0) }) }

    @Test("the committed messages Valise made are accepted by Valise's own responder")
    func committedMessagesRead() throws {
        let url = try #require(Bundle.module.url(forResource: "session-started-by-valise", withExtension: "json", subdirectory: "Fixtures"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let messages = try #require(object["messages"] as? [[String: String]])
        try #require(messages.count == Self.starts.count)
        for (start, entry) in zip(Self.starts, messages) {
            #expect(entry["bobSeed"] == Hex.encode(start.pair.bob.seed.withUnsafeBytes { Array($0) }))
            let message = try #require(Hex.decode(entry["sessionMessage"] ?? ""))
            let accepted = try Session.accept(message, identity: start.pair.bob, prekeys: start.prekeys)
            #expect(accepted.plaintext == start.plaintext && accepted.session.peerIdentity == start.pair.alice.publicKey)
        }
    }

    @Test("write initial messages for session.py", .enabled(if: ProcessInfo.processInfo.environment["VALISE_WRITE_SESSION_STARTS"] != nil))
    func writeStartedByValise() throws {
        let path = try #require(ProcessInfo.processInfo.environment["VALISE_WRITE_SESSION_STARTS"])
        var entries: [[String: String]] = []
        for start in Self.starts {
            var alice = try Session.initiate(identity: start.pair.alice, bundle: start.pair.bundle(oneTime: start.oneTime, lastResort: start.lastResort))
            let message = try alice.encrypt(start.plaintext)
            #expect(try Session.accept(message, identity: start.pair.bob, prekeys: start.prekeys).plaintext == start.plaintext)
            var entry = [
                "name": start.name,
                "bobSeed": Hex.encode(start.pair.bob.seed.withUnsafeBytes { Array($0) }),
                "bobSignedPrekey": Self.secret(start.pair.bobSignedPrekey),
                "bobKEMPrekeySeed": Hex.encode(start.kem.seed.withUnsafeBytes { Array($0) }),
                "sessionMessage": Hex.encode(message),
                "plaintext": Hex.encode(start.plaintext),
            ]
            if start.oneTime { entry["bobOneTimePrekey"] = Self.secret(start.pair.bobOneTimePrekey) }
            entries.append(entry)
        }
        let document: [String: Any] = [
            "source": "Tests/ValiseSessionTests/SessionInteropTests.swift (writeStartedByValise): Session.initiate and encrypt of Valise "
                + "(swift-crypto's ML-KEM-1024 encapsulation, its own randomness), with Bob's fixed keys. "
                + "`scripts/interop/session.py read session-started-by-valise.json` reads each as Bob.",
            "messages": entries,
        ]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
    }
}
