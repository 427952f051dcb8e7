import Testing
import ValiseCrypto
@testable import ValiseDirectory

@Suite("Public-key, request and checkpoint files")
struct PublicFileTests {
    static let admin = TestAdmin("alice")
    static let relay = TestRelay("relay-1", label: "files")
    static let device = TestDevice("amara@jakarta", label: "files")
    static let newDevice = TestDevice("amara@jakarta", label: "files, new")

    static var adminFile: AdminPublicFile {
        AdminPublicFile(name: admin.name, signingKey: admin.signingKey, transportKey: admin.transportKey.publicKey, created: DirectoryFixture.epoch)
    }

    static var requests: [MemberRequest] {
        [
            device.enrollmentRequest(created: DirectoryFixture.epoch),
            MemberRequest.rotation(
                member: device.member, oldIdentityKey: device.identityKey, newIdentityKey: newDevice.identityKey,
                newTransportKey: newDevice.transportKey.publicKey, created: DirectoryFixture.epoch),
        ]
    }

    /// Every single-bit change of `bytes` must be refused by `decode`.
    func expectEveryBitFlipRefused(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation, _ decode: ([UInt8]) throws -> Void) {
        for index in bytes.indices {
            for bit in 0..<8 {
                #expect(throws: (any Error).self, "byte \(index) bit \(bit)", sourceLocation: sourceLocation) {
                    try decode(flipping(bytes, at: index, mask: 1 << bit))
                }
            }
        }
    }

    @Test("an admin public-key file round-trips and any change to it is refused")
    func adminFile() throws {
        let file = Self.adminFile
        let decoded = try AdminPublicFile(fileBytes: file.fileBytes())
        #expect(decoded == file)
        #expect(decoded.admin == Self.admin.record)
        #expect(decoded.fingerprint.digits.count == 30)
        expectEveryBitFlipRefused(file.fileBytes()) { _ = try AdminPublicFile(fileBytes: $0) }
        #expect(throws: FormatError.self) { try AdminPublicFile(fileBytes: file.fileBytes() + [0]) }
        let badName = AdminPublicFile(name: "Alice", signingKey: Self.admin.signingKey, transportKey: Self.admin.transportKey.publicKey, created: 1)
        #expect(throws: FormatError.self) { try AdminPublicFile(fileBytes: badName.fileBytes()) }
    }

    @Test("a relay public-key file round-trips and any change to it is refused")
    func relayFile() throws {
        let file = Self.relay.publicFile
        let decoded = try RelayPublicFile(fileBytes: file.fileBytes())
        #expect(decoded == file)
        #expect(decoded.record(name: "relay-1", address: "r:1").hasValidProof)
        let error = #expect(throws: FormatError.self) { try RelayPublicFile(fileBytes: flipping(file.fileBytes(), at: file.fileBytes().count - 1)) }
        #expect(error?.message.contains("signature does not verify") == true)
        expectEveryBitFlipRefused(file.fileBytes()) { _ = try RelayPublicFile(fileBytes: $0) }
        #expect(throws: FormatError.self) { try RelayPublicFile(fileBytes: Self.adminFile.fileBytes()) }
    }

    @Test("enrollment and rotation request files round-trip and any change to them is refused")
    func requestFiles() throws {
        for request in Self.requests {
            let bytes = request.fileBytes()
            let decoded = try MemberRequest(fileBytes: bytes)
            #expect(decoded == request)
            #expect(decoded.isValid)
            #expect(decoded.fingerprint == request.fingerprint)
            expectEveryBitFlipRefused(bytes) { _ = try MemberRequest(fileBytes: $0) }
            #expect(throws: FormatError.self) { try MemberRequest(fileBytes: bytes + [0]) }
        }
        #expect(Self.requests.map(\.kind) == [.enrollment, .rotation])
        // The rotation's two signatures are over the same statement, by two keys.
        let rotation = Self.requests[1]
        #expect(rotation.oldIdentityKey == Self.device.identityKey.publicKey)
        #expect(rotation.oldKeySignature != rotation.signature)
    }

    @Test("a request file that was altered and re-signed by another key no longer matches its keys")
    func requestResigned() {
        // An enrollment statement signed by a key that is not its identity key.
        let request = Self.requests[0]
        let forged = MemberRequest(
            member: request.member, oldIdentityKey: nil, identityKey: request.identityKey, transportKey: request.transportKey,
            created: request.created, signature: Self.newDevice.identityKey.signature(for: request.statement, purpose: .enrollmentRequest),
            oldKeySignature: nil)
        let error = #expect(throws: FormatError.self) { try MemberRequest(fileBytes: forged.fileBytes()) }
        #expect(error?.message.contains("does not verify") == true)
        #expect(throws: FormatError.self) { try MemberRequest(fileBytes: [UInt8](repeating: 0, count: MemberRequest.maximumFileByteCount + 1)) }
    }

    @Test("a checkpoint file round-trips; a changed one no longer verifies")
    func checkpointFile() throws {
        let fixture = DirectoryFixture.mixedLog()
        let verifier = try fixture.verifier()
        guard case .certifyCheckpointKeyUntil = fixture.entries[7].body else { Issue.record("entry 7 is not a certification"); return }
        let key = try #require(fixture.checkpointKeys.last)
        #expect(verifier.state?.checkpointKey == key.publicKey)
        let checkpoint = Checkpoint(sequence: fixture.head.sequence, headHash: fixture.head.hash, time: fixture.now, signingKey: key)
        let bytes = checkpoint.fileBytes()
        #expect(bytes.count == 8 + 1 + Checkpoint.byteCount)
        let decoded = try Checkpoint(fileBytes: bytes)
        #expect(decoded == checkpoint)
        try decoded.verify(against: verifier, now: fixture.now)
        // Every change either fails to decode or fails to verify.
        for index in bytes.indices {
            let changed = flipping(bytes, at: index, mask: 0x10)
            #expect(throws: (any Error).self, "byte \(index)") { try Checkpoint(fileBytes: changed).verify(against: verifier, now: fixture.now) }
        }
        #expect(throws: FormatError.trailingBytes("")) { try Checkpoint(fileBytes: bytes + [0]) }
    }
}
