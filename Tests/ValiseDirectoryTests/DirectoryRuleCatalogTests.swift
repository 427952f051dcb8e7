import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// One representative breach of every rule in `DirectoryError.Rule`; the switch is
/// exhaustive, so a new rule does not compile until it has a case here. The suites beside
/// this one try each rule's variants.
@Suite("Every directory rule has a refusal that names the entry")
struct DirectoryRuleCatalogTests {
    @Test("the rule is reported with its code and the entry's sequence number", arguments: DirectoryError.Rule.allCases)
    func breach(_ rule: DirectoryError.Rule) throws {
        let (error, sequence) = try Self.breach(rule)
        #expect(error.code == rule.rawValue, "\(error.message)")
        #expect(error.message.contains(rule.description))
        #expect(error.message.contains("entry \(sequence)"), "\(error.message)")
        if rule != .checkpoint {
            #expect(error.sequence == sequence)
        }
    }

    @Test("rule codes are distinct and stable")
    func codes() {
        let codes = DirectoryError.Rule.allCases.map(\.rawValue)
        #expect(Set(codes).count == codes.count)
        #expect(DirectoryError.Rule.genesisPin.rawValue == "genesis-pin")
        #expect(DirectoryError.Rule.keyReuse.rawValue == "key-reuse")
        #expect(DirectoryError.Rule.fork.description == "FORK")
    }

    /// Breaks `rule` once and returns the error with the sequence number it concerns.
    static func breach(_ rule: DirectoryError.Rule) throws -> (DirectoryError, UInt64) {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        let amara = fixture.enroll("amara@jakarta")
        let relay = fixture.newRelay("relay-1")
        fixture.append(DirectoryFixture.addRelay(relay))
        let verifier = try fixture.verifier()
        let chidi = fixture.newDevice("chidi@lagos")
        let enrollChidi = fixture.enrollment(chidi)

        func appending(_ entry: DirectoryEntry, to verifier: DirectoryVerifier = verifier, now: UInt64? = nil) throws -> (DirectoryError, UInt64) {
            var copy = verifier
            do {
                try copy.append(entry, now: now ?? entry.timestamp)
            } catch {
                return (error, entry.sequence)
            }
            throw Failure("entry \(entry.sequence) (\(entry.body.summary)) was accepted")
        }
        let empty = DirectoryVerifier(pinnedGenesis: nil)

        switch rule {
        case .malformed:
            // The verifier's own case (more than ten million entries) is out of reach here;
            // decoding failures are wrapped with the entry's number.
            return (DirectoryError.malformed(.truncated("directory entry 4"), sequence: 4), 4)
        case .genesis:
            let entry = DirectoryFixture.sign(
                DirectoryEntry(sequence: 0, previousHash: .zero, timestamp: DirectoryFixture.epoch, body: enrollChidi), by: fixture.admins)
            return try appending(entry, to: empty)
        case .genesisPin:
            return try appending(DirectoryFixture(adminCount: 2, threshold: 1, randomKeys: true).genesis, to: DirectoryVerifier(pinnedGenesis: fixture.genesisHash))
        case .sequence:
            return try appending(DirectoryFixture.sign(fixture.entry(enrollChidi, sequence: 4), by: fixture.admins))
        case .chain:
            return try appending(DirectoryFixture.sign(fixture.entry(enrollChidi, previousHash: fixture.genesisHash), by: fixture.admins))
        case .time:
            return try appending(fixture.next(enrollChidi, timestamp: fixture.head.timestamp - 1))
        case .future:
            let entry = fixture.next(enrollChidi)
            return try appending(entry, now: entry.timestamp - DirectoryVerifier.maximumClockSkew - 1)
        case .signature:
            let entry = fixture.next(enrollChidi)
            return try appending(try DirectoryEntry(decoding: flipping(entry.encoded(), at: entry.encoded().count - 1)))
        case .signer:
            return try appending(fixture.next(enrollChidi, signedBy: [fixture.admins[0], TestAdmin("mallory")]))
        case .threshold:
            return try appending(fixture.next(enrollChidi, signedBy: [fixture.admins[2]]))
        case .admins:
            return try appending(fixture.next(DirectoryFixture.changeAdmins(fixture.admins, threshold: 4)))
        case .member:
            let second = fixture.newDevice(amara.member.value)
            return try appending(fixture.next(fixture.enrollment(second)))
        case .keyReuse:
            return try appending(fixture.next(DirectoryFixture.certify(amara.identityKey)))
        case .request:
            let good = chidi.enrollmentRequest(created: 1)
            let forged = MemberRequest(
                member: good.member, oldIdentityKey: nil, identityKey: good.identityKey, transportKey: good.transportKey,
                created: 2, signature: good.signature, oldKeySignature: nil)
            return try appending(fixture.next(.enroll(Enrollment(request: forged, mission: "Lagos", role: "consul"))))
        case .relay:
            return try appending(fixture.next(DirectoryFixture.removeRelay("relay-9")))
        case .rollback:
            var copy = verifier
            do {
                try copy.extend(with: Array(fixture.entries.prefix(1)), now: fixture.now)
            } catch {
                return (error, 0)
            }
            throw Failure("a shorter log was accepted")
        case .fork:
            var copy = verifier
            let other = DirectoryFixture(adminCount: 2, threshold: 1, randomKeys: true)
            do {
                try copy.extend(with: [other.genesis] + fixture.entries[1...], now: fixture.now)
            } catch {
                return (error, 0)
            }
            throw Failure("a forked log was accepted")
        case .checkpoint:
            let key = TestKeys.signing("uncertified")
            let checkpoint = Checkpoint(sequence: 1, headHash: fixture.entries[1].hash, time: fixture.now, signingKey: key)
            do {
                try checkpoint.verify(against: verifier, now: fixture.now)
            } catch {
                return (error, 1)
            }
            throw Failure("a checkpoint by an uncertified key was accepted")
        case .notAfter:
            let certification = CheckpointKeyCertification(key: fixture.newCheckpointKey().publicKey, notAfter: fixture.head.timestamp)
            return try appending(fixture.next(.certifyCheckpointKeyUntil(certification)))
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
