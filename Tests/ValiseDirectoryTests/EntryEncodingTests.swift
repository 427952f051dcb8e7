import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Entry encoding")
struct EntryEncodingTests {
    static let log = DirectoryFixture.mixedLog()

    // Offsets in an entry: u8 version ‖ u64 sequence ‖ hash ‖ u64 timestamp ‖ u8 kind ‖ u32 length ‖ body.
    static let kindOffset = 1 + 8 + 32 + 8
    static let lengthOffset = kindOffset + 1
    static let bodyOffset = lengthOffset + 4

    static func entries(of kind: EntryBody.Kind) -> [DirectoryEntry] {
        log.entries.filter { $0.body.kind == kind }
    }

    @Test("every kind of entry decodes to the same entry, with the same hash and encoding", arguments: EntryBody.Kind.allCases)
    func roundTrip(_ kind: EntryBody.Kind) throws {
        let entries = Self.entries(of: kind)
        try #require(!entries.isEmpty, "the mixed log has no \(kind.name) entry")
        for entry in entries {
            let decoded = try DirectoryEntry(decoding: entry.encoded())
            #expect(decoded == entry)
            #expect(decoded.hash == entry.hash)
            #expect(decoded.encoded() == entry.encoded())
            // The signed bytes are a function of the fields: one encoding per entry.
            let rebuilt = DirectoryEntry(sequence: decoded.sequence, previousHash: decoded.previousHash, timestamp: decoded.timestamp, body: decoded.body)
            #expect(rebuilt.signedBytes == entry.signedBytes)
            #expect(entry.encoded()[Self.kindOffset] == kind.rawValue)
        }
    }

    @Test("both rotation variants and both revocation targets round-trip")
    func variants() throws {
        let rotations = Self.entries(of: .rotate).compactMap { entry -> Rotation? in
            if case .rotate(let rotation) = entry.body { rotation } else { nil }
        }
        #expect(rotations.map(\.oldKeyCountersigned).sorted { !$0 && $1 } == [false, true])
        let targets = Self.entries(of: .revoke).compactMap { entry -> Revocation.Target? in
            if case .revoke(let revocation) = entry.body { revocation.target } else { nil }
        }
        #expect(targets.contains { if case .member = $0 { true } else { false } })
        #expect(targets.contains { if case .identityKey = $0 { true } else { false } })
    }

    @Test("an unknown entry kind is refused, naming it", arguments: [0, 13, 255] as [UInt8])
    func unknownKind(_ code: UInt8) {
        var bytes = Self.log.entries[2].encoded()
        bytes[Self.kindOffset] = code
        let error = #expect(throws: FormatError.self) { try DirectoryEntry(decoding: bytes) }
        #expect(error?.code == "invalid")
        #expect(error?.message.contains("unknown entry kind \(code)") == true)
    }

    @Test("an unknown entry version is refused", arguments: [0, 2, 255] as [UInt8])
    func unknownVersion(_ version: UInt8) {
        var bytes = Self.log.entries[2].encoded()
        bytes[0] = version
        #expect(throws: FormatError.unsupportedVersion("", 0)) { try DirectoryEntry(decoding: bytes) }
    }

    @Test("a body length that does not match the body is refused", arguments: [-1, 1, 64, 16 * 1024 + 1, Int(UInt32.max)])
    func bodyLengthMismatch(_ delta: Int) throws {
        for entry in Self.log.entries {
            var bytes = entry.encoded()
            let length = entry.signedBytes.count - Self.bodyOffset
            let claimed = delta == Int(UInt32.max) ? UInt32.max : UInt32(length + delta)
            bytes.replaceSubrange(Self.lengthOffset..<Self.bodyOffset, with: withUnsafeBytes(of: claimed.bigEndian, Array.init))
            #expect(throws: FormatError.self) { try DirectoryEntry(decoding: bytes) }
        }
    }

    @Test("trailing bytes after an entry are refused")
    func trailingBytes() {
        for entry in Self.log.entries {
            #expect(throws: FormatError.trailingBytes("")) { try DirectoryEntry(decoding: entry.encoded() + [0]) }
        }
    }

    @Test("signatures must be sorted by signer, each signer once")
    func canonicalSignatureOrder() throws {
        let entry = Self.log.entries[9]  // the change of admins, signed by all three
        try #require(entry.signatures.count == 3)
        let bytes = entry.encoded()
        let start = entry.signedBytes.count + 1
        let first = Array(bytes[start..<start + 96])
        let second = Array(bytes[start + 96..<start + 192])

        var swapped = bytes
        swapped.replaceSubrange(start..<start + 192, with: second + first)
        let error = #expect(throws: FormatError.self) { try DirectoryEntry(decoding: swapped) }
        #expect(error?.message.contains("canonical order") == true)

        var repeated = bytes
        repeated.replaceSubrange(start + 96..<start + 192, with: first)
        #expect(throws: FormatError.self) { try DirectoryEntry(decoding: repeated) }

        var tooMany = bytes
        tooMany[start - 1] = UInt8(DirectoryEntry.maximumSignatures + 1)
        #expect(throws: FormatError.self) { try DirectoryEntry(decoding: tooMany) }
    }

    @Test("a late co-signature changes the encoding but not the hash")
    func lateCosignature() throws {
        let fixture = Self.log
        let proposed = fixture.next(DirectoryFixture.removeRelay("relay-9"), signedBy: [fixture.admins[3]])
        let cosigned = proposed.signed(by: fixture.admins[0].signingKey)
        #expect(cosigned.hash == proposed.hash)
        #expect(cosigned.signedBytes == proposed.signedBytes)
        #expect(cosigned.signatures.count == 2)
        #expect(cosigned.encoded() != proposed.encoded())
        #expect(cosigned.signatures.map(\.signer.bytes) == cosigned.signatures.map(\.signer.bytes).sorted { $0.lexicographicallyPrecedes($1) })
        #expect(cosigned.signatures.allSatisfy(cosigned.isValid))
        // Signing again with the same key replaces that signature.
        #expect(cosigned.signed(by: fixture.admins[0].signingKey).signatures.count == 2)
        #expect(try DirectoryEntry(decoding: cosigned.encoded()).hash == proposed.hash)
    }

    @Test("flag and target bytes outside their range are refused")
    func flagsAndTargets() throws {
        let lost = try #require(Self.entries(of: .rotate).first { if case .rotate(let r) = $0.body { !r.oldKeyCountersigned } else { false } })
        var rotation = lost.encoded()
        rotation[lost.signedBytes.count - 1] = 2  // the countersigned flag is the body's last byte
        #expect(throws: FormatError.self) { try DirectoryEntry(decoding: rotation) }

        for target: UInt8 in [0, 3] {
            var revocation = Self.entries(of: .revoke)[0].encoded()
            revocation[Self.bodyOffset] = target
            #expect(throws: FormatError.self) { try DirectoryEntry(decoding: revocation) }
        }
    }

    @Test("fields that break their rules are refused when decoded")
    func fieldRules() {
        let fixture = Self.log
        let device = TestDevice("chidi@lagos", label: "field rules")
        let admins = fixture.admins.map(\.record)
        let bodies: [EntryBody] = [
            fixture.enrollment(device, mission: "Embassy\nin Lagos"),
            fixture.enrollment(device, mission: ""),
            fixture.enrollment(device, role: String(repeating: "r", count: Enrollment.maximumRoleLength + 1)),
            .addRelay(RelayRecord(name: "Relay 1", address: "r:1", noiseKey: device.transportKey.publicKey, signingKey: device.identityKey.publicKey, proof: device.enrollmentRequest(created: 0).signature)),
            .removeRelay(name: ""),
            .enrollAtHome(Enrollment(request: device.enrollmentRequest(created: 0), mission: "Lagos", role: "consul"), home: "-x"),
            .move(member: device.member, home: ""),
            .move(member: device.member, home: "Relay 1"),
            .setRelayAddresses(name: "relay-2", addresses: [String(repeating: "a", count: RelayRecord.maximumAddressLength - 1) + ":1"]),
            .setRelayAddresses(name: "relay-2", addresses: ["relay\n2:1"]),
            .setRelayAddresses(name: "Relay 2", addresses: ["relay-2:1"]),
            .revoke(Revocation(target: .member(device.member), reason: "\u{7}")),
            .changeAdmins(AdminSet(admins: (0..<33).map { TestAdmin("a\($0)").record }, threshold: 2)),
            .changeAdmins(AdminSet(admins: [], threshold: 1)),
            .changeAdmins(AdminSet(admins: [AdminRecord(name: "-x", signingKey: admins[0].signingKey, transportKey: admins[0].transportKey)], threshold: 1)),
            .genesis(Genesis(organisation: String(repeating: "o", count: Genesis.maximumOrganisationLength + 1), admins: AdminSet(admins: admins, threshold: 1), freshness: .standard)),
        ]
        for body in bodies {
            let entry = fixture.next(body)
            #expect(throws: FormatError.self, "\(body.summary)") { try DirectoryEntry(decoding: entry.encoded()) }
        }
    }

    /// The identity point (small order) and a non-canonical encoding.
    static let invalidPoints: [[UInt8]] = [[1] + [UInt8](repeating: 0, count: 31), [UInt8](repeating: 0xff, count: 32)]

    @Test("an admin key that is not a valid Ed25519 point is refused when decoded")
    func invalidAdminKey() {
        let genesis = Self.log.genesis
        // Body: organisation (u16 + 27 bytes), admin count, first admin's name (u16 + "alice"), signing key.
        let keyOffset = Self.bodyOffset + 2 + DirectoryFixture.organisation.utf8.count + 1 + 2 + "alice".utf8.count
        #expect(Array(genesis.encoded()[keyOffset..<keyOffset + 32]) == Self.log.admins[0].signingKey.publicKey.bytes)
        for key in Self.invalidPoints {
            var tampered = genesis.encoded()
            tampered.replaceSubrange(keyOffset..<keyOffset + 32, with: key)
            #expect(throws: FormatError.self) { try DirectoryEntry(decoding: tampered) }
        }
    }

    @Test("signer and request keys are not point-checked when decoded, but an invalid point never verifies")
    func invalidSignatureCheckedKeys() throws {
        let fixture = Self.log
        let verifier = try fixture.verifier()
        let proposed = fixture.next(DirectoryFixture.removeRelay("relay-9"), signedBy: [fixture.admins[0]])
        let firstSigner = proposed.signedBytes.count + 1
        for key in Self.invalidPoints {
            var bytes = proposed.encoded()
            bytes.replaceSubrange(firstSigner..<firstSigner + 32, with: key)
            let decoded = try DirectoryEntry(decoding: bytes)
            expectRefused(decoded, by: verifier, rule: .signer)

            let device = TestDevice("chidi@lagos", label: "invalid point")
            let good = device.enrollmentRequest(created: fixture.head.timestamp)
            let request = MemberRequest(
                member: good.member, oldIdentityKey: nil, identityKey: try SigningPublicKey(bytesCheckedBySignature: key),
                transportKey: good.transportKey, created: good.created, signature: good.signature, oldKeySignature: nil)
            let enroll = fixture.next(.enroll(Enrollment(request: request, mission: "Embassy in Lagos", role: "consul")))
            #expect(try DirectoryEntry(decoding: enroll.encoded()) == enroll)
            expectRefused(enroll, by: verifier, rule: .request)
        }
    }
}
