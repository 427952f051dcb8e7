import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// Keys derived from a label, so that a failing test shows the same keys on every run.
enum TestKeys {
    static func signing(_ label: String) -> SigningKey {
        try! SigningKey(seed: SecretBytes(copying: BLAKE2b.hash(Array("signing/\(label)".utf8), outputByteCount: 32)))
    }

    static func agreement(_ label: String) -> AgreementPrivateKey {
        try! AgreementPrivateKey(
            rawRepresentation: SecretBytes(copying: BLAKE2b.hash(Array("agreement/\(label)".utf8), outputByteCount: 32)))
    }
}

/// An administrator's two keys, as `valise admin keygen` makes them on the admin's machine.
struct TestAdmin: Sendable {
    let name: String
    let signingKey: SigningKey
    let transportKey: AgreementPrivateKey

    init(_ name: String, random: Bool = false) {
        self.name = name
        signingKey = random ? SigningKey() : TestKeys.signing("admin/\(name)")
        transportKey = random ? AgreementPrivateKey() : TestKeys.agreement("admin/\(name)")
    }

    var record: AdminRecord {
        AdminRecord(name: name, signingKey: signingKey.publicKey, transportKey: transportKey.publicKey)
    }
}

/// One device of a member: its identity and transport keys.
struct TestDevice: Sendable {
    let member: MemberName
    let identityKey: SigningKey
    let transportKey: AgreementPrivateKey

    init(_ member: String, label: String) {
        self.member = try! MemberName(member)
        identityKey = TestKeys.signing("device/\(label)")
        transportKey = TestKeys.agreement("device/\(label)")
    }

    func enrollmentRequest(created: UInt64) -> MemberRequest {
        MemberRequest.enrollment(
            member: member, identityKey: identityKey, transportKey: transportKey.publicKey, created: created)
    }

    /// A request whose signature does not verify: it covers `created`, the request says one later.
    func forgedEnrollmentRequest(created: UInt64) -> MemberRequest {
        let good = enrollmentRequest(created: created)
        return MemberRequest(
            member: good.member, oldIdentityKey: nil, identityKey: good.identityKey, transportKey: good.transportKey,
            created: good.created + 1, signature: good.signature, oldKeySignature: nil)
    }
}

/// A relay's keys, as `valised init` makes them.
struct TestRelay: Sendable {
    let name: String
    let noiseKey: AgreementPrivateKey
    let signingKey: SigningKey

    init(_ name: String, label: String) {
        self.name = name
        noiseKey = TestKeys.agreement("relay/\(label)")
        signingKey = TestKeys.signing("relay/\(label)")
    }

    var publicFile: RelayPublicFile { RelayPublicFile(noiseKey: noiseKey.publicKey, signingKey: signingKey) }
    func record(address: String = "relay.example.org:7443") -> RelayRecord {
        publicFile.record(name: name, address: address)
    }
}

/// Builds directory logs the way admins do: a genesis with K of N admins, then entries that
/// each continue the head (sequence = count, previous hash = head hash, a later timestamp),
/// signed by the admins a test chooses. The fixture does not verify what it builds; tests
/// hand its entries to `DirectoryVerifier`.
struct DirectoryFixture: Sendable {
    /// 2026-01-01T00:00:00Z; each new entry is dated a minute after the previous one.
    static let epoch: UInt64 = 1_767_225_600
    static let organisation = "Ministry of Foreign Affairs"

    /// The admins in force at the head, in the order they sign by default.
    var admins: [TestAdmin]
    var threshold: UInt8
    var entries: [DirectoryEntry] = []
    /// Each member's current device, as the fixture enrolled or rotated it.
    var devices: [MemberName: TestDevice] = [:]
    /// Checkpoint keys made by `newCheckpointKey`, in order.
    var checkpointKeys: [SigningKey] = []
    /// Makes every derived key label unique within the fixture.
    private var serial = 0

    /// A fixture with a genesis by `adminCount` admins, `threshold` of whom must sign.
    init(adminCount: Int = 3, threshold: UInt8 = 2, randomKeys: Bool = false) {
        let admins = (0..<adminCount).map { TestAdmin(Self.adminName($0), random: randomKeys) }
        self.init(admins: admins, threshold: threshold)
    }

    init(admins: [TestAdmin], threshold: UInt8, freshness: FreshnessPolicy = .standard, signedBy signers: [TestAdmin]? = nil) {
        self.admins = admins
        self.threshold = threshold
        let genesis = Self.genesis(admins: admins, threshold: threshold, freshness: freshness)
        let entry = DirectoryEntry(sequence: 0, previousHash: .zero, timestamp: Self.epoch, body: genesis)
        entries = [Self.sign(entry, by: signers ?? Array(admins.prefix(Int(threshold))))]
    }

    static func adminName(_ index: Int) -> String {
        let names = ["alice", "bruno", "chen", "dalia", "emeka", "fatou"]
        return index < names.count ? names[index] : "admin-\(index)"
    }

    static func genesis(admins: [TestAdmin], threshold: UInt8, freshness: FreshnessPolicy = .standard) -> EntryBody {
        .genesis(Genesis(
            organisation: organisation, admins: AdminSet(admins: admins.map(\.record), threshold: threshold),
            freshness: freshness))
    }

    // MARK: - The head

    var genesis: DirectoryEntry { entries[0] }
    var genesisHash: EntryHash { entries[0].hash }
    var head: DirectoryEntry { entries[entries.count - 1] }
    /// A time shortly after the head entry, for verifying.
    var now: UInt64 { head.timestamp + 1 }

    /// Verifies the fixture's log from its pinned genesis.
    func verifier() throws(DirectoryError) -> DirectoryVerifier {
        try DirectoryVerifier.verify(entries, pinnedGenesis: genesisHash, now: now)
    }

    // MARK: - Making and signing entries

    /// The next entry, unsigned; any field can be overridden to build a broken one.
    func entry(_ body: EntryBody, sequence: UInt64? = nil, previousHash: EntryHash? = nil, timestamp: UInt64? = nil) -> DirectoryEntry {
        DirectoryEntry(
            sequence: sequence ?? UInt64(entries.count), previousHash: previousHash ?? head.hash,
            timestamp: timestamp ?? head.timestamp + 60, body: body)
    }

    /// The next entry, signed by `signers` (by default: the first `threshold` admins in force).
    func next(_ body: EntryBody, signedBy signers: [TestAdmin]? = nil, timestamp: UInt64? = nil) -> DirectoryEntry {
        Self.sign(entry(body, timestamp: timestamp), by: signers ?? defaultSigners)
    }

    var defaultSigners: [TestAdmin] { Array(admins.prefix(Int(threshold))) }

    static func sign(_ entry: DirectoryEntry, by signers: [TestAdmin]) -> DirectoryEntry {
        signers.reduce(entry) { $0.signed(by: $1.signingKey) }
    }

    /// Makes, signs and adds the next entry (without verifying it).
    @discardableResult
    mutating func append(_ body: EntryBody, signedBy signers: [TestAdmin]? = nil) -> DirectoryEntry {
        let entry = next(body, signedBy: signers)
        entries.append(entry)
        return entry
    }

    // MARK: - Members

    /// A device with keys never used before in this fixture.
    mutating func newDevice(_ member: String) -> TestDevice {
        serial += 1
        return TestDevice(member, label: "\(member)/\(serial)")
    }

    func enrollment(_ device: TestDevice, mission: String = "Embassy in Jakarta", role: String = "attaché") -> EntryBody {
        .enroll(Enrollment(request: device.enrollmentRequest(created: head.timestamp), mission: mission, role: role))
    }

    /// Enrolls a new device for `member` and returns it.
    @discardableResult
    mutating func enroll(_ member: String, signedBy signers: [TestAdmin]? = nil) -> TestDevice {
        let device = newDevice(member)
        append(enrollment(device), signedBy: signers)
        devices[device.member] = device
        return device
    }

    /// Enrolls a new device for `member`, homed at relay `home` (kind 10), and returns it.
    @discardableResult
    mutating func enroll(_ member: String, home: String) -> TestDevice {
        let device = newDevice(member)
        guard case .enroll(let enrollment) = enrollment(device) else { preconditionFailure("an enrollment") }
        append(.enrollAtHome(enrollment, home: home))
        devices[device.member] = device
        return device
    }

    /// A planned rotation: the old device countersigns the new keys.
    func rotation(from old: TestDevice, to new: TestDevice) -> EntryBody {
        let request = MemberRequest.rotation(
            member: old.member, oldIdentityKey: old.identityKey, newIdentityKey: new.identityKey,
            newTransportKey: new.transportKey.publicKey, created: head.timestamp)
        return .rotate(Rotation(request: request, replacing: old.identityKey.publicKey))
    }

    /// A lost device: the new device's plain enrollment request replaces `old`.
    func lostDeviceRotation(replacing old: SigningPublicKey, with new: TestDevice) -> EntryBody {
        .rotate(Rotation(request: new.enrollmentRequest(created: head.timestamp), replacing: old))
    }

    /// Rotates `member` to a new device (countersigned unless `lostDevice`) and returns it.
    @discardableResult
    mutating func rotate(_ member: MemberName, lostDevice: Bool = false) -> TestDevice {
        let old = devices[member]!
        let new = newDevice(member.value)
        append(lostDevice ? lostDeviceRotation(replacing: old.identityKey.publicKey, with: new) : rotation(from: old, to: new))
        devices[member] = new
        return new
    }

    static func revoke(_ member: MemberName, reason: String = "left the service") -> EntryBody {
        .revoke(Revocation(target: .member(member), reason: reason))
    }

    static func revoke(key: SigningPublicKey, reason: String = "device lost") -> EntryBody {
        .revoke(Revocation(target: .identityKey(key), reason: reason))
    }

    // MARK: - Relays, admins, checkpoints

    mutating func newRelay(_ name: String) -> TestRelay {
        serial += 1
        return TestRelay(name, label: "\(name)/\(serial)")
    }

    static func addRelay(_ relay: TestRelay, address: String = "relay.example.org:7443") -> EntryBody {
        .addRelay(relay.record(address: address))
    }

    static func removeRelay(_ name: String) -> EntryBody { .removeRelay(name: name) }

    static func changeAdmins(_ admins: [TestAdmin], threshold: UInt8) -> EntryBody {
        .changeAdmins(AdminSet(admins: admins.map(\.record), threshold: threshold))
    }

    /// Appends a change of admins signed by the admins in force, and makes the new ones the
    /// default signers.
    mutating func appendChangeAdmins(_ newAdmins: [TestAdmin], threshold newThreshold: UInt8, signedBy signers: [TestAdmin]? = nil) {
        append(Self.changeAdmins(newAdmins, threshold: newThreshold), signedBy: signers)
        admins = newAdmins
        threshold = newThreshold
    }

    mutating func newCheckpointKey() -> SigningKey {
        serial += 1
        checkpointKeys.append(TestKeys.signing("checkpoint/\(serial)"))
        return checkpointKeys[checkpointKeys.count - 1]
    }

    /// Certifies `key` (kind 9) until a year after the fixture's epoch.
    static func certify(_ key: SigningKey) -> EntryBody {
        .certifyCheckpointKeyUntil(CheckpointKeyCertification(key: key.publicKey, notAfter: epoch + 365 * 86_400))
    }

    // MARK: - Ready-made logs

    /// A short valid log (3 entries): genesis, an enrollment, a relay.
    static func smallLog() -> DirectoryFixture {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        fixture.enroll("amara@jakarta")
        let relay = fixture.newRelay("relay-1")
        fixture.append(addRelay(relay))
        return fixture
    }

    /// A valid log of `count` entries: the genesis and enrollments, long enough (from 64
    /// entries) for the verifier to check signatures on several threads.
    static func longLog(count: Int) -> DirectoryFixture {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        for index in 1..<count {
            fixture.enroll("member-\(index)@jakarta")
        }
        return fixture
    }

    /// A valid log with every kind of entry, from a 2-of-3 genesis (16 entries):
    /// genesis, add relay, enroll ×2, rotate (countersigned), rotate (lost device), certify
    /// without a not-after (kind 8), certify with one (kind 9), revoke a retired key, change
    /// admins, add a second relay, enroll at it (kind 10), move the first member there (kind
    /// 11), revoke the other, set the second relay's addresses (kind 12), remove the first
    /// relay (no active member is homed there any more).
    static func mixedLog() -> DirectoryFixture {
        var fixture = DirectoryFixture(adminCount: 3, threshold: 2)
        let relay = fixture.newRelay("relay-1")
        fixture.append(addRelay(relay))
        let amara = fixture.enroll("amara@jakarta")
        let bo = fixture.enroll("bo@nairobi")
        fixture.rotate(amara.member)
        fixture.rotate(bo.member, lostDevice: true)
        fixture.append(.certifyCheckpointKey(fixture.newCheckpointKey().publicKey))
        let checkpointKey = fixture.newCheckpointKey()
        fixture.append(certify(checkpointKey), signedBy: Array(fixture.admins.suffix(2)))
        fixture.append(revoke(key: amara.identityKey.publicKey))
        fixture.appendChangeAdmins(fixture.admins + [TestAdmin("dalia")], threshold: 2, signedBy: fixture.admins)
        let second = fixture.newRelay("relay-2")
        fixture.append(addRelay(second, address: "relay-2.example.org:7443"))
        fixture.enroll("ines@geneva", home: second.name)
        fixture.append(.move(member: amara.member, home: second.name))
        fixture.append(revoke(bo.member))
        fixture.append(.setRelayAddresses(name: second.name, addresses: ["relay-2a.example.org:7443", "[2001:db8::2]:7443"]))
        fixture.append(removeRelay(relay.name))
        return fixture
    }
}

/// What a verifier holds, compared before and after a refused entry.
struct VerifierSnapshot: Equatable {
    let count: Int
    let hashes: [EntryHash]
    let headHash: EntryHash?
    let headTimestamp: UInt64?
    let admins: AdminSet?
    let members: [MemberName: Member]
    let relays: [String: RelayRecord]
    let revokedKeys: [SigningPublicKey: RevokedKey]
    let checkpointKeys: [SigningPublicKey]
    let usedSigningKeys: Set<SigningPublicKey>
    let usedAgreementKeys: Set<AgreementPublicKey>

    init(_ verifier: DirectoryVerifier) {
        count = verifier.count
        hashes = verifier.hashes
        let state = verifier.state
        headHash = state?.headHash
        headTimestamp = state?.headTimestamp
        admins = state?.admins
        members = state?.members ?? [:]
        relays = state?.relays ?? [:]
        revokedKeys = state?.revokedKeys ?? [:]
        checkpointKeys = state?.checkpointKeys.map(\.key) ?? []
        usedSigningKeys = state?.usedSigningKeys ?? []
        usedAgreementKeys = state?.usedAgreementKeys ?? []
    }
}

/// Expects `entry` to be refused as the next entry under `rule`, with a message that names
/// the entry's sequence number, and the verifier to be left exactly as it was.
@discardableResult
func expectRefused(
    _ entry: DirectoryEntry, by verifier: DirectoryVerifier, rule: DirectoryError.Rule, now: UInt64? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) -> DirectoryError? {
    var copy = verifier
    let before = VerifierSnapshot(verifier)
    let error = #expect(throws: DirectoryError.self, sourceLocation: sourceLocation) {
        try copy.append(entry, now: now ?? entry.timestamp + 1)
    }
    #expect(error?.code == rule.rawValue, "\(error?.message ?? "no error")", sourceLocation: sourceLocation)
    #expect(error?.sequence == entry.sequence, sourceLocation: sourceLocation)
    #expect(error?.message.contains("entry \(entry.sequence)") == true, sourceLocation: sourceLocation)
    #expect(VerifierSnapshot(copy) == before, "a refused entry changed the verifier", sourceLocation: sourceLocation)
    return error
}

/// Expects `entry` to be accepted as the next entry, and returns the verifier with it.
@discardableResult
func expectAccepted(
    _ entry: DirectoryEntry, by verifier: DirectoryVerifier, now: UInt64? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) -> DirectoryVerifier {
    var copy = verifier
    #expect(throws: Never.self, sourceLocation: sourceLocation) { try copy.append(entry, now: now ?? entry.timestamp + 1) }
    return copy
}

/// `bytes` with `mask` XORed into the byte at `index`.
func flipping(_ bytes: [UInt8], at index: Int, mask: UInt8 = 0x01) -> [UInt8] {
    var copy = bytes
    copy[index] ^= mask
    return copy
}
