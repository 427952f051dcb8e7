import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseStore

/// Which relay to use: this device's home relay in the directory, or another one by name;
/// at the directory's addresses, or another (the key is still the one the directory names).
struct RelayOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Reach the relay at this address instead of the directory's (its key is still checked).", valueName: "host:port"))
    var relay: String?

    @Option(name: .long, help: ArgumentHelp("Connect to this relay instead of this device's home relay (it sends you home if it is not).", valueName: "name"))
    var relayName: String?
}

/// `--precedence flash|immediate|priority|routine`.
struct PrecedenceArgument: ExpressibleByArgument {
    let value: Precedence

    init(_ value: Precedence) { self.value = value }

    init?(argument: String) {
        guard let match = Precedence.allCases.first(where: { $0.name.lowercased() == argument.lowercased() }) else { return nil }
        value = match
    }

    static var allValueStrings: [String] { Precedence.allCases.reversed().map { $0.name.lowercased() } }
    var defaultValueDescription: String { value.name.lowercased() }
}

/// The unlocked device for a command: from the agent when one runs for this home, else from
/// the passphrase; first of all, the home must be private (read-only commands too).
func unlockDevice(_ options: GlobalOptions, home: ValiseHome, warnAboutWeakKeystore: Bool = true) throws(ClientError) -> UnlockedDevice {
    try home.checkPrivate()
    if options.passphraseFile == nil, let unlocked = try AgentClient.unlocked(home: home) {
        return unlocked
    }
    let keystore = DeviceKeystore(home: home)
    let file = try keystore.inspect()
    if warnAboutWeakKeystore, let warning = DeviceReport.weakKeystoreWarning(file.parameters) { printWarning(warning) }
    return try options.unlocking(keystore.path) { (passphrase) throws(ClientError) in
        try UnlockedDevice.unlock(home: home, passphrase: passphrase)
    }
}

/// Opens the device offline, with the pinned directory.
func openOffline(_ options: GlobalOptions, now: UInt64) throws(ClientError) -> (DeviceSession, Messenger) {
    let home = try options.resolveHome()
    let pinned = try PinnedOrganisation(home: home).load(now: now)
    let (session, messenger) = try DeviceSession.open(
        home: home, organisation: pinned, unlocked: try unlockDevice(options, home: home), now: now, receiptDelay: Environment.receiptDelay())
    return (session, messenger)
}

/// Connects to the relay, refreshes the directory, opens the device and runs `steps`.
func withRelaySync<T: Sendable>(
    _ options: GlobalOptions, _ relay: RelayOptions, unlocked: UnlockedDevice? = nil, now: @escaping @Sendable () -> UInt64,
    _ steps: (DeviceSession, MessageSync) async throws(ClientError) -> T
) async throws(ClientError) -> T {
    let home = try options.resolveHome()
    let pinned = try PinnedOrganisation(home: home).load(now: now())
    let device: UnlockedDevice
    if let unlocked { device = unlocked } else { device = try unlockDevice(options, home: home) }
    let unlocked = device
    return try await DeviceSession.connectHome(
        home: home, identity: unlocked.identity, pinned: pinned, relayName: relay.relayName, address: relay.relay, now: now, onMove: printNote
    ) { (client, welcome, target, pinned) throws(ClientError) -> T in
        let organisation = try await DeviceSession.refreshDirectory(client, home: home, pinned: pinned, now: now())
        let (session, messenger) = try DeviceSession.open(
            home: home, organisation: organisation, unlocked: unlocked, now: now(), receiptDelay: Environment.receiptDelay())
        defer { messenger.close() }
        if session.rotationCompleted { printNote("Key rotation completed: the directory lists the new keys, which this device now uses.") }
        if let warning = DirectoryFreshness(organisation, now: now()).warning { printWarning(warning) }
        let sync = MessageSync(
            messenger: messenger, client: client, relay: target.relay, sendsPerSecond: welcome.sendsPerSecond, sendBurst: welcome.sendBurst)
        sync.home = home
        sync.maximumBlobBytes = welcome.maximumBlobBytes
        sync.progress = TransferProgress.sink(json: options.json)
        return try await steps(session, sync)
    }
}

extension Environment {
    /// The delay range for delivery receipts: VALISE_RECEIPT_DELAY=MIN-MAX (seconds), for
    /// demonstrations and tests; otherwise the default (a few seconds to half a minute).
    static func receiptDelay() -> ClosedRange<UInt64> {
        guard let text = values(["VALISE_RECEIPT_DELAY"])["VALISE_RECEIPT_DELAY"] else { return Messenger.defaultReceiptDelay }
        let parts = text.split(separator: "-").compactMap { UInt64($0) }
        guard parts.count == 2, parts[0] <= parts[1] else {
            printWarning("VALISE_RECEIPT_DELAY is not MIN-MAX in seconds; using the default")
            return Messenger.defaultReceiptDelay
        }
        return parts[0]...parts[1]
    }
}

/// Whether an error means the relay could not be reached (the outbox keeps the message),
/// as opposed to a refusal that must stop the command. A relay that is shutting down (a
/// restart, an upgrade; RelayClient names its refusal "relay-" and the wire code) is
/// expected back, so it counts as unreachable: `watch` reconnects, `send` keeps the message.
/// So do relays that disagree about this device's home (a move still spreading).
func isUnreachable(_ error: ClientError) -> Bool {
    error.isConnectionLost || ["directory-behind", "relay-shuttingDown", "relays-disagree"].contains(error.code)
}

/// Where the messages are when `send` or `sync` fails: every failure says so.
enum OutboxNote {
    static func kept(_ waiting: Int) -> String {
        waiting == 1
            ? "1 message kept in the outbox; it goes at the next sync"
            : "\(waiting) messages kept in the outbox; they go at the next sync"
    }

    /// The error with the note, when messages wait; a device that wiped itself (revoked)
    /// keeps none worth naming.
    static func adding(to error: ClientError, waiting: Int) -> ClientError {
        guard waiting > 0, error.code != "device-revoked" else { return error }
        return ClientError(kind: error.kind, code: error.code, message: "\(error.message); \(kept(waiting))")
    }

    /// How many messages wait in the outbox, read offline after a failure (nil if that fails too).
    static func waiting(_ options: GlobalOptions, unlocked: UnlockedDevice) -> Int? {
        do throws(ClientError) {
            let home = try options.resolveHome()
            let pinned = try PinnedOrganisation(home: home).load(now: Environment.now())
            let (_, messenger) = try DeviceSession.open(home: home, organisation: pinned, unlocked: unlocked, now: Environment.now())
            defer { messenger.close() }
            return try messenger.counts().outboxWaiting
        } catch {
            return nil
        }
    }
}

enum MessageText {
    static func shortID(_ id: [UInt8]) -> String { String(Hex.encode(id).prefix(8)) }

    static func time(_ seconds: UInt64) -> String { Timestamp.rfc3339(seconds) }

    /// A sender's text made safe for a terminal: control characters (but newline and tab),
    /// escape sequences and bidirectional overrides would let a message draw a false
    /// "From:" line or header, so each is shown as U+FFFD.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            let value = scalar.value
            let control = (value < 0x20 && value != 0x0A && value != 0x09) || (0x7F...0x9F).contains(value)
            let bidi = (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value) || value == 0x200E || value == 0x200F
            return control || bidi ? "\u{FFFD}" : scalar
        }))
    }

    static func undeliverableExplanation(_ reason: UndeliverableReason) -> String {
        switch reason {
        case .recipientRevoked: "the recipient was revoked before taking it"
        case .unknownRecipient: "the recipient's relay knows no such member"
        case .deletedByOperator: "the relay's operator deleted it"
        case .refusedByRelay: "the recipient's relay refused it (a malformed envelope, or too many relays on the way)"
        }
    }

    /// One line per thing that happened in a sync, for people.
    static func describe(_ report: MessageSync.Report, sentLines: Bool = true, warnedAbout: Set<String> = []) -> [String] {
        var lines: [String] = []
        for change in report.keyChanges where !warnedAbout.contains(change.member.value) { printWarning(change.warning) }
        if sentLines {
            for (id, to) in report.sent { lines.append("Sent \(shortID(id)) to \(to): the relay has it.") }
        }
        for message in report.received {
            if let change = message.keysChanged { printWarning(change.warning) }
            if let note = message.directoryNote { printDirectoryNote(note) }
            lines.append("New \(message.precedenceName) message \(shortID(message.id)) from \(message.from) (read it with: valise read \(shortID(message.id))).")
        }
        if report.receipts > 0 { lines.append("\(report.receipts) sent message\(report.receipts == 1 ? " was" : "s were") delivered to the recipient's device (end-to-end receipt).") }
        for reason in UndeliverableReason.allCases {
            guard let count = report.undeliverable[reason], count > 0 else { continue }
            lines.append("\(count) sent message\(count == 1 ? " is" : "s are") undeliverable: \(undeliverableExplanation(reason)) (the relay's signed status).")
        }
        if report.forwarded > 0 {
            lines.append("\(report.forwarded) sent message\(report.forwarded == 1 ? " was" : "s were") handed to the recipient's relay (see: valise sent).")
        }
        if report.expired > 0 { lines.append("\(report.expired) sent message\(report.expired == 1 ? "" : "s") expired before the recipient took \(report.expired == 1 ? "it" : "them") (the relay's signed status).") }
        for (code, reason) in report.refused { printWarning("refused an envelope [\(code)]: \(reason)") }
        for reason in report.later { printNote(reason) }
        for notice in report.notices { printNote(notice) }
        return lines
    }
}

/// The DIRECTORY FORK alarm as a warning; the unproven mismatch as a quiet note.
func printDirectoryNote(_ note: DirectoryNote) {
    if note.isAlarm { printWarning(note.text) } else { printNote(note.text) }
}
