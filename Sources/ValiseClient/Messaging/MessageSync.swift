import Foundation
import NIOConcurrencyHelpers
public import NIOCore
import ValiseCrypto
public import ValiseDirectory
import ValiseSession
public import ValiseStore
import ValiseWire

/// Drives a `Messenger` over one relay connection: prekeys up, outbox out, mailbox in,
/// statuses checked. Steps run one at a time, so a session is never advanced by two at once.
public final class MessageSync {
    public let messenger: Messenger
    let client: RelayClient
    let relay: RelayRecord

    /// What happened, for the command to say.
    public struct Report: Sendable {
        public var oneTimePrekeysOnRelay: Int?
        public var oneTimeKEMPrekeysOnRelay: Int?
        public var prekeysRotated = false
        public var sent: [(id: [UInt8], to: String)] = []
        public var received: [InboxMessage] = []
        public var receipts = 0
        public var repeated = 0
        public var refused: [(code: String, reason: String)] = []
        public var later: [String] = []
        public var expired = 0
        /// Messages the relay's signed status says can never be delivered, by reason.
        public var undeliverable: [UndeliverableReason: Int] = [:]
        /// Messages the relay's signed status says it handed to another relay.
        public var forwarded = 0
        public var notices: [String] = []
        public var keyChanges: [Messenger.KeyChange] = []
        public var mailboxDrained = false
        /// Filled by `summarize`.
        public var unread = 0
        public var outboxWaiting = 0

        public init() {}
    }

    public internal(set) var report = Report()
    /// Whether the directory was fetched from this relay moments ago (see
    /// `Messenger.receive`); a long `watch` stops saying so after its first tick.
    var directoryCurrent = true

    /// Keeps sends within the relay's rate; nil when the relay did not say it.
    var pacer: SendPacer?

    /// The device's home folder, where attachments are kept (none: they stay pending).
    public var home: ValiseHome?
    /// The relay's largest blob (its Welcome), when known.
    public var maximumBlobBytes: UInt64?
    /// Told of blob transfers as they go (bytes done, bytes in all), for a progress line.
    public var progress: ((TransferDirection, UInt64, UInt64) -> Void)?
    /// When the connection last moved a blob part, so that a long transfer is not taken for
    /// a relay that stopped answering.
    let lastActivity = NIOLockedValueBox<UInt64>(DispatchTime.now().uptimeNanoseconds)

    /// `sendsPerSecond` and `sendBurst` are what the relay's Welcome said (0: nothing).
    public init(messenger: Messenger, client: RelayClient, relay: RelayRecord, sendsPerSecond: Double = 0, sendBurst: UInt32 = 0) {
        self.messenger = messenger
        self.client = client
        self.relay = relay
        pacer = SendPacer(perSecond: sendsPerSecond, burst: sendBurst, now: Self.uptime())
    }

    public var relayName: String { relay.name }

    /// Counts unread messages and outbox items not yet accepted, into the report.
    @discardableResult
    public func summarize() throws(ClientError) -> Report {
        let (unread, waiting) = try messenger.counts()
        report.unread = unread
        report.outboxWaiting = waiting
        return report
    }

    // MARK: Prekeys

    /// Uploads the current signed prekey and envelope key (replacing them when due), learns
    /// how many one-time prekeys the relay holds, and tops them up when low.
    /// A relay that refuses (a full disk, say) leaves the device's older prekeys in place:
    /// that is a notice, not a failed sync; a lost connection still throws.
    public func uploadPrekeys(now: UInt64) async throws(ClientError) {
        do {
            var held = try await upload(try messenger.preparePrekeys(newOneTimePrekeys: 0, now: now))
            var add = Messenger.oneTimePrekeysToAdd(relayHolds: held.oneTime)
            var addKEM = Messenger.oneTimeKEMPrekeysToAdd(relayHolds: held.oneTimeKEM)
            // KEM prekeys go in batches, so that every upload fits a relay's 64 KiB message limit.
            while add > 0 || addKEM > 0 {
                let batch = min(addKEM, Messenger.maximumKEMPrekeysPerUpload)
                held = try await upload(try messenger.preparePrekeys(newOneTimePrekeys: add, newOneTimeKEMPrekeys: batch, now: now))
                add = 0
                addKEM -= batch
            }
            report.oneTimePrekeysOnRelay = held.oneTime
            report.oneTimeKEMPrekeysOnRelay = held.oneTimeKEM
        } catch where Self.isRefusal(error) {
            report.notices.append("the relay did not store this device's prekeys (\(error.message)); colleagues may not be able to start a conversation with it until a later sync succeeds")
        }
    }

    /// The relay answered with an error (as opposed to the connection failing).
    static func isRefusal(_ error: ClientError) -> Bool {
        error.code.hasPrefix("relay-") && !error.isConnectionLost && error.code != "relay-handshake" && error.code != "relay-protocol"
    }

    private func upload(_ prekeys: Messenger.PrekeyUpload) async throws(ClientError) -> (oneTime: Int, oneTimeKEM: Int) {
        if prekeys.rotated { report.prekeysRotated = true }
        var upload = WirePrekeyUpload()
        upload.signedPrekey = Data(prekeys.signedPrekey.bytes)
        upload.signedPrekeySignature = Data(prekeys.signedPrekeySignature.bytes)
        upload.envelopeKemKey = Data(prekeys.envelopeKey.bytes)
        upload.envelopeKemKeySignature = Data(prekeys.envelopeKeySignature.bytes)
        upload.oneTimePrekeys = prekeys.oneTimePrekeys.map { Data($0.bytes) }
        upload.lastResortKemPrekey = Self.wire(prekeys.lastResortKEMPrekey)
        upload.oneTimeKemPrekeys = prekeys.oneTimeKEMPrekeys.map(Self.wire)
        let answer = try await client.request(.prekeyUpload(upload))
        guard case .prekeysStored(let stored) = answer.body else {
            throw .failure("relay-protocol", "the relay answered a prekey upload with something else")
        }
        return (Int(stored.oneTimePrekeys), Int(stored.oneTimeKemPrekeys))
    }

    private static func wire(_ prekey: PQXDH.KEMPrekey) -> WireKEMPrekey {
        var wire = WireKEMPrekey()
        wire.key = Data(prekey.key.bytes)
        wire.signature = Data(prekey.signature.bytes)
        return wire
    }

    // MARK: Outbox

    /// Encrypts what is due (fetching keys first: a bundle where a session must start, the
    /// envelope key alone where one exists) and sends every encrypted envelope until the
    /// relay has it. A recipient without published keys, or a full mailbox, leaves the item
    /// waiting; a lost connection stops here. Sends keep to the relay's rate (`SendPacer`):
    /// a circular of hundreds takes as long as the relay's rate says, within this call.
    public func flushOutbox(now: UInt64) async throws(ClientError) {
        try await uploadBlobs()
        let due = try messenger.unsealed(now: now)
        let keys = try await fetchKeys(due.filter { $0.needs != .none }.map { ($0.to, $0.needs) })
        var waiting: Set<MemberName> = []
        for (item, name, needs) in due {
            if waiting.contains(name) { continue }
            var bundle: Messenger.Bundle?
            if needs != .none {
                switch keys[name] {
                case .keys(let fetched)?:
                    bundle = fetched
                case .wait(let notice)?:
                    waiting.insert(name)
                    report.notices.append(notice)
                    continue
                case .unknown?:
                    try messenger.undeliverable(item, now: now)
                    report.notices.append("not sent: the relay no longer knows \(name) (revoked?); run 'valise sync' to see the directory")
                    continue
                case nil:
                    continue
                }
            }
            let notices: [Messenger.SealNotice]
            do {
                notices = try messenger.seal(item, to: name, bundle: bundle, now: now)
            } catch where error.kind == .verification {
                // This recipient's keys are unusable (a bad bundle, a small-order key): their
                // messages wait, and everyone else's still go.
                waiting.insert(name)
                report.notices.append("not sent to \(name) yet: \(error.message)")
                continue
            }
            for notice in notices {
                switch notice {
                case .keysChanged(let change): report.keyChanges.append(change)
                case .recipientRevoked(let who): report.notices.append("not sent: \(who) was revoked by the organisation")
                case .waitingForKeys(let who, let why): report.notices.append("waiting for \(who): \(why)")
                }
            }
        }
        let held = try messenger.waitingForCheckpoint(now: now)
        if held > 0 {
            report.notices.append(
                "\(held) message\(held == 1 ? " waits" : "s wait") in the outbox for a fresh checkpoint: this device's directory is older than the organisation allows, so ordinary messages go only to members homed at this device's relay (FLASH still goes)")
        }
        // Paced sending takes a while: acceptances are dated by the time passed since `now`.
        let started = Self.uptime()
        var current: UInt64 { now &+ (Self.uptime() &- started) / 1_000_000_000 }
        sending: for (item, to) in try messenger.readyToSend(now: now) {
            var send = WireSend()
            send.id = Data(item.id)
            send.recipient = to
            send.precedence = WirePrecedence(rawValue: Int(item.precedence)) ?? .routine
            send.ttl = WireTTLClass(rawValue: Int(item.ttl)) ?? .day
            send.envelope = Data(item.envelope ?? [])
            var answer: WireRelayMessage?
            var retries = 0
            while answer == nil {
                try await paceNextSend()
                do {
                    answer = try await client.request(.send(send))
                } catch where error.code == "relay-\(WireErrorCode.unknownRecipient)" {
                    try messenger.undeliverable(item, now: current)
                    report.notices.append("not sent: the relay refuses \(to) (no longer a member)")
                    continue sending
                } catch where error.code == "relay-\(WireErrorCode.rateLimited)" {
                    // Paced, and refused all the same: another connection of this device
                    // sent too. Wait an interval and try again, a few times; unpaced (the
                    // relay did not say its rate), every further send would be refused too.
                    retries += 1
                    guard pacer != nil, retries <= Self.rateLimitedRetries else {
                        report.notices.append("the relay asks this device to send more slowly; the remaining messages stay in the outbox for the next sync")
                        break sending
                    }
                    pacer?.drain(now: Self.uptime())
                } catch where Self.isRefusal(error) {
                    report.notices.append("the relay did not take a message for \(to) yet (\(error.message)); it stays in the outbox")
                    continue sending
                }
            }
            guard case .accepted(let accepted)? = answer?.body, Array(accepted.id) == item.id else {
                throw .failure("relay-protocol", "the relay answered a send with something else")
            }
            try messenger.accepted(item, expiresAt: accepted.expiresAt, now: current)
            if item.kind == .message { report.sent.append((item.id, to)) }
        }
    }

    // MARK: Mailbox

    /// Handles one delivered envelope: stored (or refused) locally first, then acknowledged.
    @discardableResult
    func handle(_ deliver: WireDeliver, now: UInt64) async throws(ClientError) -> Messenger.Received {
        let delivered = Messenger.Delivered(
            id: Array(deliver.id), precedence: UInt8(clamping: deliver.precedence.rawValue), ttlClass: UInt8(clamping: deliver.ttl.rawValue),
            requestedTTLClass: UInt8(clamping: deliver.requestedTtl.rawValue), envelope: Array(deliver.envelope))
        let outcome = try messenger.receive(delivered, now: now, directoryCurrent: directoryCurrent)
        switch outcome {
        case .message(let message): report.received.append(message)
        case .receipt(let count): report.receipts += count
        case .repeated: report.repeated += 1
        case .refused(let code, let reason): report.refused.append((code, reason))
        case .later(let reason): report.later.append(reason)
        }
        var acknowledge = outcome.acknowledge
        switch outcome {
        case .message, .repeated:
            // A message's files are fetched and checked before the relay may delete it.
            acknowledge = try await fetchAttachments(of: delivered.id, expiresAt: deliver.expiresAt, now: now)
        default:
            break
        }
        if acknowledge {
            var ack = WireAck()
            ack.ids = [deliver.id]
            try await client.post(.ack(ack))
        }
        return outcome
    }

    /// Asks the relay to deliver this device's mailbox on this connection.
    private func startDelivery() async throws(ClientError) {
        var fetch = WireFetch()
        fetch.window = 32
        try await client.post(.fetch(fetch))
    }

    /// Asks the relay for this device's mailbox and handles every envelope until the relay
    /// says it is idle (or `timeout` passes).
    public func fetchMailbox(now: @Sendable () -> UInt64, timeout: TimeAmount = .seconds(60)) async throws(ClientError) {
        try await startDelivery()
        let client = self.client
        let lastActivity = self.lastActivity
        noteActivity()
        // Closes a connection that moved nothing for `timeout` (a blob part counts).
        let watchdog = Task {
            while true {
                try await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds))
                let idle = DispatchTime.now().uptimeNanoseconds &- lastActivity.withLockedValue { $0 }
                if idle >= UInt64(timeout.nanoseconds) { break }
            }
            await client.close()
        }
        defer { watchdog.cancel() }
        for await message in client.unsolicited {
            switch message.body {
            case .deliver(let deliver):
                try await handle(deliver, now: now())
            case .mailboxIdle:
                report.mailboxDrained = true
                // Used one-time prekeys and old session states must not stay in the log.
                messenger.store.checkpoint()
                return
            case .error(let error):
                throw RelayClient.relayError(error)
            default:
                continue
            }
        }
        throw .failure("relay-closed", "the relay closed the connection before the mailbox was read to the end; what arrived is stored, the rest comes next time")
    }

    /// Stays on the connection: handles envelopes as the relay pushes them (calling
    /// `onMessage` for each new message), and every `tick` sends what has fallen due in the
    /// outbox (delivery receipts wait a random delay). Returns when the connection ends.
    public func watch(now: @escaping @Sendable () -> UInt64, tick: TimeAmount = .seconds(5), onMessage: (InboxMessage) -> Void) async throws(ClientError) {
        enum Event: Sendable {
            case relay(WireRelayMessage)
            case tick
        }
        try await startDelivery()
        let (events, continuation) = AsyncStream<Event>.makeStream()
        let client = self.client
        let forward = Task {
            for await message in client.unsolicited { continuation.yield(.relay(message)) }
            continuation.finish()
        }
        let ticker = Task {
            while !Task.isCancelled {
                try await Task.sleep(nanoseconds: UInt64(tick.nanoseconds))
                continuation.yield(.tick)
            }
        }
        defer {
            forward.cancel()
            ticker.cancel()
        }
        for await event in events {
            switch event {
            case .relay(let message):
                switch message.body {
                case .deliver(let deliver):
                    switch try await handle(deliver, now: now()) {
                    case .message(let received): onMessage(received)
                    case .later:
                        // A sender newer than this connection's directory: reconnect, which
                        // fetches the directory, and the relay delivers it again.
                        throw .failure("directory-behind", "a message's sender is newer than this device's directory; reconnecting to fetch it")
                    default: break
                    }
                case .error(let error):
                    throw RelayClient.relayError(error)
                default:
                    continue
                }
            case .tick:
                directoryCurrent = false
                try await flushOutbox(now: now())
                messenger.store.checkpoint()
            }
        }
        throw .failure("relay-closed", "the connection to the relay ended")
    }
}
