import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// Kind 9, "certify checkpoint key" with a not-after time, written by hand from
/// docs/PROTOCOL.md ("Entries", "Bodies"), and the rules for the keys it certifies.
@Suite("Checkpoint keys with a not-after")
struct CheckpointKeyTests {
    static let day: UInt64 = 86_400

    @Test("kind 9 decodes as PROTOCOL.md writes it, encodes back to the same bytes, and verifies")
    func kind9RoundTrip() throws {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        let key = fixture.newCheckpointKey()
        let timestamp = fixture.head.timestamp + 60
        let bytes = fixture.handEncodedCertification(key, notAfter: timestamp + 365 * Self.day, timestamp: timestamp)
        let entry = try DirectoryEntry(decoding: bytes)
        #expect(entry.encoded() == bytes)
        #expect(entry.body.kind.rawValue == 9)
        fixture.entries.append(entry)
        let verifier = try fixture.verifier()
        #expect(verifier.state?.checkpointKey == key.publicKey)
        let checkpoint = Checkpoint(sequence: 1, headHash: entry.hash, time: fixture.now, signingKey: key)
        try checkpoint.verify(against: verifier, now: fixture.now)
    }

    @Test("a checkpoint dated after its key's not-after is refused, even by a verifier never shown a newer key")
    func pastNotAfter() throws {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        fixture.enroll("amara@jakarta")
        let key = fixture.newCheckpointKey()
        let timestamp = fixture.head.timestamp + 60
        let notAfter = timestamp + 30 * Self.day
        fixture.entries.append(try DirectoryEntry(decoding: fixture.handEncodedCertification(key, notAfter: notAfter, timestamp: timestamp)))
        fixture.enroll("bo@nairobi")
        let verifier = try fixture.verifier()
        let head = fixture.head
        try Checkpoint(sequence: head.sequence, headHash: head.hash, time: notAfter, signingKey: key).verify(against: verifier, now: notAfter)
        let late = Checkpoint(sequence: head.sequence, headHash: head.hash, time: notAfter + 1, signingKey: key)
        let error = #expect(throws: DirectoryError.self) { try late.verify(against: verifier, now: notAfter + 1) }
        #expect(error?.code == "checkpoint")
        #expect(error?.message.contains("not-after") == true, "\(error?.message ?? "")")
        // Naming another head changes nothing: an expired key proves no fork either.
        let forged = Checkpoint(sequence: head.sequence, headHash: fixture.entries[1].hash, time: notAfter + 1, signingKey: key)
        let forgedError = #expect(throws: DirectoryError.self) { try forged.verify(against: verifier, now: notAfter + 1) }
        #expect(forgedError?.code == "checkpoint")
    }

    @Test("a kind 9 whose not-after is not after its timestamp, or more than 730 days after it, is refused")
    func notAfterBounds() throws {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        fixture.enroll("amara@jakarta")
        let verifier = try fixture.verifier()
        let timestamp = fixture.head.timestamp + 60
        let cases: [(notAfter: UInt64, accepted: Bool)] = [
            (0, false), (timestamp - 1, false), (timestamp, false), (timestamp + 1, true),
            (timestamp + 730 * Self.day, true), (timestamp + 730 * Self.day + 1, false), (UInt64.max, false),
        ]
        for (notAfter, accepted) in cases {
            let entry = try DirectoryEntry(decoding: fixture.handEncodedCertification(
                fixture.newCheckpointKey(), notAfter: notAfter, timestamp: timestamp))
            var copy = verifier
            if accepted {
                #expect(throws: Never.self, "not-after \(notAfter)") { try copy.append(entry, now: timestamp + 1) }
            } else {
                let error = #expect(throws: DirectoryError.self, "not-after \(notAfter)") { try copy.append(entry, now: timestamp + 1) }
                #expect(error?.code == "not-after", "\(error?.message ?? "")")
                #expect(copy.count == verifier.count)
            }
        }
    }

    @Test("a kind 9 key must never have been used, like every other key")
    func keyReuse() throws {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        let amara = fixture.enroll("amara@jakarta")
        let first = fixture.newCheckpointKey()
        let timestamp = fixture.head.timestamp + 60
        fixture.entries.append(try DirectoryEntry(decoding: fixture.handEncodedCertification(first, notAfter: timestamp + Self.day, timestamp: timestamp)))
        let verifier = try fixture.verifier()
        for key in [first, fixture.admins[0].signingKey, amara.identityKey] {
            let again = try DirectoryEntry(decoding: fixture.handEncodedCertification(key, notAfter: timestamp + 2 * Self.day, timestamp: timestamp + 60))
            var copy = verifier
            let error = #expect(throws: DirectoryError.self) { try copy.append(again, now: timestamp + 61) }
            #expect(error?.code == "key-reuse", "\(error?.message ?? "")")
        }
    }

    @Test("kind 8 still verifies, but the key it certifies signs no checkpoint that counts")
    func kind8KeysDoNotCount() throws {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        let key = fixture.newCheckpointKey()
        fixture.append(.certifyCheckpointKey(key.publicKey))
        fixture.enroll("amara@jakarta")
        let verifier = try fixture.verifier()
        let checkpoint = Checkpoint(sequence: 2, headHash: fixture.head.hash, time: fixture.now, signingKey: key)
        let error = #expect(throws: DirectoryError.self) { try checkpoint.verify(against: verifier, now: fixture.now) }
        #expect(error?.code == "checkpoint")
    }
}

extension DirectoryFixture {
    /// The next entry certifying `key` until `notAfter` (kind 9: Ed25519 key ‖ u64
    /// not-after), encoded byte by byte as docs/PROTOCOL.md gives entries, and signed by the
    /// default signers.
    func handEncodedCertification(_ key: SigningKey, notAfter: UInt64, timestamp: UInt64) -> [UInt8] {
        func bigEndian(_ value: UInt64, _ count: Int) -> [UInt8] { (0..<count).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
        let body = key.publicKey.bytes + bigEndian(notAfter, 8)
        let signed = [1] + bigEndian(UInt64(entries.count), 8) + head.hash.bytes + bigEndian(timestamp, 8) + [9]
            + bigEndian(UInt64(body.count), 4) + body
        let signatures = defaultSigners.map { ($0.signingKey.publicKey.bytes, $0.signingKey.signature(for: signed, purpose: .directoryEntry).bytes) }
            .sorted { $0.0.lexicographicallyPrecedes($1.0) }
        return signed + [UInt8(signatures.count)] + signatures.flatMap { $0.0 + $0.1 }
    }
}
