import Foundation
import GRDB
import Testing
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseSession
import ValiseStore
import ValiseTestSupport

/// One member's device: its keys, a home in its own temporary directory, and a Messenger
/// over the directory it last pinned.
final class MessagingDevice {
    let name: MemberName
    private(set) var identity: DeviceIdentity
    let folder = TemporaryDirectory()
    private(set) var messenger: Messenger!

    init(_ name: String, now: UInt64) throws {
        self.name = try MemberName(name)
        identity = DeviceIdentity.generate(memberName: self.name, now: now)
    }

    var home: ValiseHome { ValiseHome(path: folder.file("home")) }
    var publicKey: SigningPublicKey { identity.identityKey.publicKey }

    /// Pins `entries` (first time or an update), brings the keys in line with them as
    /// DeviceSession does, and reopens the Messenger over the result.
    func open(_ entries: [DirectoryEntry], checkpoint: Checkpoint? = nil, now: UInt64) throws {
        let pinned = PinnedOrganisation(home: home)
        _ = try pinned.pin(OrganisationBundle(entries: entries, checkpoint: checkpoint), expectedGenesis: nil, now: now, file: "test bundle")
        let loaded = try pinned.load(now: now)
        _ = identity.reconcile(with: loaded.state.members[name], now: now)
        messenger?.close()
        messenger = try Messenger(home: home, identity: identity, directory: loaded, receiptDelay: 0...0)
    }

    /// Opens the Messenger again over the same directory (after the store was changed behind it).
    func reopen() throws {
        messenger.close()
        messenger = try Messenger(home: home, identity: identity, directory: messenger.directory, receiptDelay: 0...0)
    }

    /// Makes new keys and returns the rotation request, as `valise keys rotate` does.
    func startRotation(now: UInt64) -> MemberRequest { identity.startRotation(now: now) }

    /// The private half of the envelope key this device publishes now.
    func envelopeKey() throws -> XWingPrivateKey {
        let current = try messenger.store.read("read the envelope keys") { try $0.prekeys(.xwingEnvelope) }.first { $0.retiredAt == nil }
        return try XWingPrivateKey(seed: #require(current, "\(name) has no envelope key yet").privateKey)
    }

    /// Flips one byte in the middle of every sealed value in a column of the closed store,
    /// as disk damage or tampering would, then opens the Messenger again.
    func damageStore(table: String, key: String, column: String) throws {
        messenger.close()
        let queue = try DatabaseQueue(path: home.messageStorePath)
        try queue.write { db in
            for row in try Row.fetchAll(db, sql: "SELECT \(key) AS k, \(column) AS v FROM \(table)") {
                var value = [UInt8](row["v"] as Data)
                value[value.count / 2] ^= 0x01
                try db.execute(sql: "UPDATE \(table) SET \(column) = ? WHERE \(key) = ?", arguments: [Data(value), row["k"] as Data])
            }
        }
        try queue.close()
        try reopen()
    }

    /// Where this device keeps the evidence of a proven directory fork.
    var forkEvidencePath: String { home.path + "/fork-evidence" }

    /// The evidence files this device kept (none if the directory does not exist).
    func forkEvidence() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: forkEvidencePath)) ?? []).sorted().map { forkEvidencePath + "/" + $0 }
    }

    /// Everything this device has stored or queued: inbox messages and outbox items of any kind.
    func storedCount() throws -> (inbox: Int, outbox: Int) {
        let inbox = try messenger.inbox(unreadOnly: false).count
        let outbox = try messenger.store.read("count the outbox") { try $0.outbox([.unsealed, .sealed, .accepted, .delivered, .expired, .failed]).count }
        return (inbox, outbox)
    }
}

/// What the relay would carry: one sealed envelope, with the labels it was sent under.
struct Envelope {
    let to: String
    let kind: OutboxKind
    let delivered: Messenger.Delivered

    var id: [UInt8] { delivered.id }
    var bytes: [UInt8] { delivered.envelope }

    /// The same labels over other bytes (and, if given, another id).
    func with(bytes: [UInt8], id: [UInt8]? = nil) -> Envelope {
        Envelope(to: to, kind: kind, delivered: Messenger.Delivered(
            id: id ?? delivered.id, precedence: delivered.precedence, ttlClass: delivered.ttlClass,
            requestedTTLClass: delivered.requestedTTLClass, envelope: bytes))
    }
}

/// An organisation with one admin and three enrolled members (alice@jakarta, bob@geneva,
/// carol@geneva), each with a device, and the relay's part played in memory: bundles are
/// handed from device to device and envelopes delivered as `readyToSend` gives them.
final class MessagingWorld {
    /// 2026-01-01T00:00:00Z; each directory entry is dated a minute after the previous one.
    static let epoch: UInt64 = 1_767_225_600

    let admin = SigningKey()
    private(set) var entries: [DirectoryEntry] = []
    let alice: MessagingDevice
    let bob: MessagingDevice
    let carol: MessagingDevice
    /// The clock every device reads; tests move it by hand.
    var now: UInt64
    /// Whether published bundles carry a one-time prekey (without one, a session's start
    /// is guarded by the replay record instead).
    var withOneTimePrekeys = true

    init() throws {
        let admins = AdminSet(admins: [AdminRecord(name: "admin", signingKey: admin.publicKey, transportKey: AgreementPrivateKey().publicKey)], threshold: 1)
        let genesis = Genesis(organisation: "Ministry of Foreign Affairs", admins: admins, freshness: .standard)
        entries = [DirectoryEntry(sequence: 0, previousHash: .zero, timestamp: Self.epoch, body: .genesis(genesis)).signed(by: admin)]
        alice = try MessagingDevice("alice@jakarta", now: Self.epoch)
        bob = try MessagingDevice("bob@geneva", now: Self.epoch)
        carol = try MessagingDevice("carol@geneva", now: Self.epoch)
        now = Self.epoch + 3600
        for device in devices {
            append(.enroll(Enrollment(request: device.identity.enrollmentRequest(), mission: "Embassy", role: "attaché")))
        }
        try open(devices)
    }

    var devices: [MessagingDevice] { [alice, bob, carol] }

    func device(_ name: String) -> MessagingDevice { devices.first { $0.name.value == name }! }

    /// Adds an entry signed by the admin (devices see it once they `open` again).
    func append(_ body: EntryBody) {
        let head = entries[entries.count - 1]
        entries.append(DirectoryEntry(sequence: UInt64(entries.count), previousHash: head.hash, timestamp: head.timestamp + 60, body: body).signed(by: admin))
    }

    /// The next entry after the common log, signed by the admin but not added: devices
    /// given different ones see a fork.
    func nextEntry(_ body: EntryBody) -> DirectoryEntry {
        let head = entries[entries.count - 1]
        return DirectoryEntry(sequence: UInt64(entries.count), previousHash: head.hash, timestamp: head.timestamp + 60, body: body).signed(by: admin)
    }

    /// Certifies `key` as the organisation's checkpoint key, for a year.
    func certifyCheckpointKey(_ key: SigningKey) {
        let timestamp = entries[entries.count - 1].timestamp + 60
        append(.certifyCheckpointKeyUntil(CheckpointKeyCertification(key: key.publicKey, notAfter: timestamp + 365 * 86_400)))
    }

    /// Gives these devices the current directory.
    func open(_ devices: [MessagingDevice]) throws {
        for device in devices { try device.open(entries, now: now) }
    }

    func revoke(_ device: MessagingDevice) {
        append(.revoke(Revocation(target: .member(device.name), reason: "left the service")))
    }

    /// An admin rotation of `device`'s keys from its own request; every device then sees it,
    /// and `device` switches to its new keys.
    func rotate(_ device: MessagingDevice) throws {
        let old = device.publicKey
        append(.rotate(Rotation(request: device.startRotation(now: now), replacing: old)))
        try open(devices)
    }

    // MARK: The relay's part

    /// The bundle `recipient` publishes now, checked by `fetcher` as MessageSync checks a fetched one.
    func bundle(of recipient: MessagingDevice, for fetcher: MessagingDevice) throws -> Messenger.Bundle {
        let upload = try recipient.messenger.preparePrekeys(newOneTimePrekeys: 1, newOneTimeKEMPrekeys: 1, now: now)
        // Without one-time prekeys, the relay hands out the last-resort KEM prekey.
        let kem = withOneTimePrekeys ? upload.oneTimeKEMPrekeys[0] : upload.lastResortKEMPrekey
        return try fetcher.messenger.checkBundle(
            member: recipient.name, identityKey: recipient.publicKey.bytes, signedPrekey: upload.signedPrekey.bytes,
            signedPrekeySignature: upload.signedPrekeySignature.bytes, envelopeKey: upload.envelopeKey.bytes,
            envelopeKeySignature: upload.envelopeKeySignature.bytes, oneTimePrekey: withOneTimePrekeys ? upload.oneTimePrekeys[0].bytes : [],
            kemPrekey: kem.key.bytes, kemPrekeySignature: kem.signature.bytes, kemPrekeyLastResort: kem.kind == .lastResort)
    }

    /// The envelope key `recipient` publishes now, as a fetch with `envelope_key_only` hands
    /// it out, checked by `fetcher`.
    func envelopeKey(of recipient: MessagingDevice, for fetcher: MessagingDevice) throws -> Messenger.Bundle {
        let upload = try recipient.messenger.preparePrekeys(newOneTimePrekeys: 0, now: now)
        return try fetcher.messenger.checkEnvelopeKey(
            member: recipient.name, identityKey: recipient.publicKey.bytes, envelopeKey: upload.envelopeKey.bytes,
            envelopeKeySignature: upload.envelopeKeySignature.bytes)
    }

    /// Seals what is due in `sender`'s outbox (fetching a bundle where one is needed, as
    /// MessageSync.flushOutbox does), and returns what the relay accepts, in sending order.
    func flush(_ sender: MessagingDevice) throws -> [Envelope] {
        var bundles: [MemberName: Messenger.Bundle] = [:]
        for (item, name, needs) in try sender.messenger.unsealed(now: now) {
            var bundle: Messenger.Bundle?
            switch needs {
            case .none:
                break
            case .bundle:
                bundle = try bundles[name] ?? self.bundle(of: device(name.value), for: sender)
                bundles[name] = bundle
            case .envelopeKey:
                bundle = try envelopeKey(of: device(name.value), for: sender)
            }
            try sender.messenger.seal(item, to: name, bundle: bundle, now: now)
        }
        return try sender.messenger.readyToSend(now: now).map { item, to in
            try sender.messenger.accepted(item, expiresAt: now + 86_400, now: now)
            return Envelope(to: to, kind: item.kind, delivered: Messenger.Delivered(
                id: item.id, precedence: item.precedence, ttlClass: item.ttl, requestedTTLClass: item.ttl, envelope: item.envelope ?? []))
        }
    }

    /// Writes `texts` from `sender` to `recipient` and returns their envelopes.
    func send(_ texts: String..., from sender: MessagingDevice, to recipient: MessagingDevice, precedence: Precedence = .routine) throws -> [Envelope] {
        for text in texts {
            _ = try sender.messenger.compose(text, to: [recipient.name], precedence: precedence, ttl: .day, now: now)
        }
        return try flush(sender).filter { $0.kind == .message }
    }

    /// Hands `envelope` to its recipient's device (or to `device`).
    func deliver(_ envelope: Envelope, to device: MessagingDevice? = nil) throws -> Messenger.Received {
        try (device ?? self.device(envelope.to)).messenger.receive(envelope.delivered, now: now)
    }

    /// The contents of `envelope`, opened as `device` would open it.
    func open(_ envelope: Envelope, as device: MessagingDevice) throws -> SealedEnvelope {
        let labels = SealedEnvelope.Labels(
            mailbox: device.name.value, id: envelope.id, precedence: envelope.delivered.precedence, ttlClass: envelope.delivered.requestedTTLClass)
        return try SealedEnvelope.open(
            envelope.bytes, with: device.envelopeKey(), labels: labels, appliedTTLClass: envelope.delivered.ttlClass, recipients: [device.publicKey])
    }

    /// Contents sealed again to `device`'s envelope key under a fresh id, as anyone can
    /// (the key is public): with the same session message, or one `change` altered.
    func reseal(
        _ contents: SealedEnvelope, to device: MessagingDevice, like envelope: Envelope, id: [UInt8]? = nil, sender: SigningPublicKey? = nil,
        head: SealedEnvelope.DirectoryHead? = nil, change: (inout [UInt8]) -> Void = { _ in }
    ) throws -> Envelope {
        var message = contents.sessionMessage
        change(&message)
        let id = id ?? Random.bytes(count: SealedEnvelope.idByteCount)
        let copy = SealedEnvelope(
            id: id, recipient: contents.recipient, precedence: contents.precedence, ttlClass: contents.ttlClass, sender: sender ?? contents.sender,
            senderHead: head ?? contents.senderHead, senderCheckpoint: contents.senderCheckpoint, timestamp: contents.timestamp, sessionMessage: message)
        return envelope.with(bytes: try copy.sealed(to: device.envelopeKey().publicKey, mailbox: device.name.value), id: id)
    }
}

extension Messenger.Received {
    var message: InboxMessage? {
        if case .message(let message) = self { return message }
        return nil
    }

    var refusalCode: String? {
        if case .refused(let code, _) = self { return code }
        return nil
    }

    var isRepeated: Bool {
        if case .repeated = self { return true }
        return false
    }

    /// What the message says about the sender's directory head: the quiet note or the
    /// DIRECTORY FORK alarm.
    var directoryNote: String? { message?.directoryNote?.text }

    /// The whole outcome as text, to look for words in it.
    var text: String { "\(self)" }

    var receiptCount: Int? {
        if case .receipt(let count) = self { return count }
        return nil
    }
}
