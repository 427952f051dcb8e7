import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseStore

extension Valise {
    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send an end-to-end encrypted message to one or more colleagues.",
            discussion: """
                Only the named members' devices can read it: it is encrypted on this computer \
                for each of them (PQXDH and the Double Ratchet) and sealed so that the relay \
                sees neither its text nor who sent it. The text is the argument, or standard \
                input when there is none (end it with Ctrl-D).

                The message is written to this device's outbox first, before any connection. \
                If the relay cannot be reached it waits there ('valise status' shows it) and \
                the next 'valise sync' sends it; any other failure says so too ("kept in the \
                outbox"). Precedence orders delivery (FLASH first) and is visible to the \
                relay; --expires says how long the relay keeps it for a recipient who is \
                offline (1h, 1d, 7d or 30d; shorter values round up to the next class).

                A circular goes to every active member a selector names: mission:NAME and \
                role:NAME match the mission and role the directory lists for each member \
                (capitals and accents typed either way), all names everyone; selectors and \
                names mix (mission:geneva,bob@nairobi). You are left out, revoked members \
                are never included, and each member gets the message once, in their own \
                end-to-end message that also says which circular it was. The command says \
                how many members that is and, at a terminal, asks before sending to more \
                than 20 (--yes does not ask). 'valise sent' shows the circular as one line.

                Messages to revoked or unknown members are refused before anything is \
                written. When a recipient's keys have changed since your last message (an \
                administrator rotated them), you are told, with their new fingerprint.

                When the directory is older than the organisation allows (no fresh \
                checkpoint: a mission cut off from headquarters), ordinary messages still go \
                to colleagues homed at your own relay, with a warning; those for members \
                homed at other relays wait in the outbox until a fresh checkpoint arrives. \
                FLASH always goes. An organisation with a single relay refuses ordinary \
                messages instead.
                """
        )

        @OptionGroup var options: GlobalOptions
        @OptionGroup var relayOptions: RelayOptions

        @Option(name: .long, help: ArgumentHelp(
            "Who receives it, separated by commas: member names, mission:NAME (everyone of a mission), role:NAME (everyone with that role) or all.",
            valueName: "member|selector[,…]"))
        var to: String

        @Flag(name: .long, help: "Send a circular to more than 20 members without asking first.")
        var yes = false

        @Option(name: .customLong("precedence"), help: ArgumentHelp("flash, immediate, priority or routine.", valueName: "precedence"))
        var precedenceArgument: PrecedenceArgument = PrecedenceArgument(.routine)

        var precedence: Precedence { precedenceArgument.value }

        @Option(name: .long, help: ArgumentHelp("How long the relay keeps it for an offline recipient: 1h, 1d, 7d or 30d.", valueName: "duration"))
        var expires: DurationArgument = DurationArgument(seconds: 7 * 86_400)

        @Option(name: .long, help: ArgumentHelp("Attach a file (repeat for several, at most 32). It is encrypted on this computer; only the recipients can open it.", valueName: "file"))
        var attach: [String] = []

        @Argument(help: ArgumentHelp("The message. Read from standard input when absent (empty when files are attached).", valueName: "text"))
        var text: String?

        /// Words after the text: an unquoted message. Refused rather than joined: the shell
        /// has already split it, and may have expanded a `*` or `?` in it into file names.
        @Argument(help: .hidden)
        var moreWords: [String] = []

        func validate() throws {
            guard moreWords.isEmpty else {
                throw ValidationError(
                    "the message came as \(moreWords.count + 1) separate words; put it in quotes, as one argument: valise send --to \(to) \"your message\" (unquoted, a shell also expands * and ? into file names); nothing was sent")
            }
            guard ttlClass != nil else {
                throw ValidationError("--expires must be at most 30d")
            }
        }

        var ttlClass: TTLClass? { TTLClass.allCases.first { $0.seconds >= UInt64(expires.seconds) } }

        func run() async throws {
            let outcome = try await reportingErrorsAsync { () async throws(ClientError) -> SendOutcome in
                let selector = try RecipientSelector(parsing: to)
                let body = try readText()
                let ttl = ttlClass ?? .week
                let home = try options.resolveHome()
                let unlocked = try unlockDevice(options, home: home)
                // Encrypted once, into the spool, before anything is written to the outbox.
                let attachments = try OutgoingAttachment.prepare(
                    files: attach, home: home, maximumBlobBytes: nil, progress: TransferProgress.sealingSink(json: options.json) ?? { _, _, _ in })
                // Committed to the outbox before any connection, so that no failure of the
                // relay (unreachable, an impostor, at its limits) can lose it. Only when the
                // pinned directory cannot take it (a member enrolled since, or a stale
                // checkpoint) is it written after the relay's newer directory is fetched.
                var composed: [Messenger.Composed]?
                var refusedOffline: ClientError?
                do throws(ClientError) {
                    let pinned = try PinnedOrganisation(home: home).load(now: Environment.now())
                    let (_, messenger) = try DeviceSession.open(
                        home: home, organisation: pinned, unlocked: unlocked, now: Environment.now(), receiptDelay: Environment.receiptDelay())
                    defer { messenger.close() }
                    composed = try compose(body, selector, ttl: ttl, attachments: attachments, messenger: messenger)
                } catch where ["unknown-recipient", "directory-stale", "selector-matches-nobody"].contains(error.code) {
                    refusedOffline = error
                } catch {
                    OutgoingAttachment.discard(attachments)
                    throw error
                }
                do throws(ClientError) {
                    return try await withRelaySync(options, relayOptions, unlocked: unlocked, now: Environment.now) { (_, sync) throws(ClientError) -> SendOutcome in
                        let items: [Messenger.Composed]
                        if let composed {
                            items = composed
                        } else {
                            items = try compose(body, selector, ttl: ttl, attachments: attachments, messenger: sync.messenger)
                            composed = items
                        }
                        try await sync.flushOutbox(now: Environment.now())
                        return SendOutcome(composed: items.map(SendOutcome.Item.init), report: sync.report, offline: nil, selector: circularText(selector))
                    }
                } catch {
                    guard let composed else {
                        OutgoingAttachment.discard(attachments)
                        guard let refusedOffline, error.code != refusedOffline.code else { throw error }
                        throw ClientError(
                            kind: error.kind, code: error.code,
                            message: "\(error.message); the message was not kept: this device's directory refused it (\(refusedOffline.message)) and a newer one could not be fetched")
                    }
                    // In the outbox already: writing it again would give it a second id, which
                    // the recipient would see twice.
                    if isUnreachable(error) {
                        return SendOutcome(
                            composed: composed.map(SendOutcome.Item.init), report: MessageSync.Report(), offline: error.message, selector: circularText(selector))
                    }
                    throw OutboxNote.adding(to: error, waiting: composed.count)
                }
            }
            for item in outcome.composed { if let warning = item.keyWarning { printWarning(warning) } }
            let warned = Set(outcome.composed.filter { $0.keyWarning != nil }.map { (item: SendOutcome.Item) in item.to })
            let lines = MessageText.describe(outcome.report, sentLines: false, warnedAbout: warned)
            if options.json {
                printJSON(outcome)
                return
            }
            let sent = Set(outcome.report.sent.map { MessageText.shortID($0.id) })
            for item in outcome.composed {
                if sent.contains(item.shortID) {
                    print("Sent \(precedence.name) message \(item.shortID) to \(item.to): the relay has it, encrypted end to end.")
                } else if item.waitsForCheckpoint {
                    print("\(precedence.name) message \(item.shortID) to \(item.to) waits in the outbox for a fresh checkpoint (\(item.to) is homed at another relay); 'valise sync' sends it once one arrives.")
                } else {
                    print("\(precedence.name) message \(item.shortID) to \(item.to) waits in the outbox\(outcome.offline.map { " (\($0))" } ?? ""); 'valise sync' sends it.")
                }
            }
            for line in lines { print(line) }
        }

        /// Circulars above this many members are confirmed at a terminal first.
        static let confirmationThreshold = 20

        private func circularText(_ selector: RecipientSelector) -> String? { selector.isCircular ? selector.text : nil }

        /// Resolves the recipients against the messenger's directory and writes the message
        /// to the outbox; a circular is announced first, and confirmed when it is large.
        private func compose(
            _ body: String, _ selector: RecipientSelector, ttl: TTLClass, attachments: [OutgoingAttachment], messenger: Messenger
        ) throws(ClientError) -> [Messenger.Composed] {
            let recipients = try selector.resolve(in: messenger.directory.state, sender: messenger.identity.memberName)
            if selector.isCircular {
                if !options.json { print("Circular to \(recipients.count) member\(recipients.count == 1 ? "" : "s") (\(selector.text)).") }
                if !yes && recipients.count > Self.confirmationThreshold && Confirmation.atTerminal {
                    guard try Confirmation.ask("Send it to all \(recipients.count) of them?", flagHint: "pass --yes to send without asking") else {
                        throw .usage("not-confirmed", "not sent: the circular was not confirmed; nothing was written")
                    }
                }
            }
            return try messenger.compose(
                body, to: recipients, circular: circularText(selector), precedence: precedence, ttl: ttl, now: Environment.now(), attachments: attachments)
        }

        private func readText() throws(ClientError) -> String {
            if let text { return text }
            if !attach.isEmpty { return "" }
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard let text = String(data: data, encoding: .utf8) else { throw .usage("not-utf8", "the message on standard input is not UTF-8 text") }
            var trimmed = text
            while trimmed.hasSuffix("\n") { trimmed.removeLast() }
            return trimmed
        }
    }
}

struct SendOutcome: Encodable, Sendable {
    struct Item: Encodable, Sendable {
        let id: String
        let to: String
        let keyWarning: String?
        let waitsForCheckpoint: Bool
        /// The circular's id (hex), when it is part of one.
        let circular: String?

        var shortID: String { String(id.prefix(8)) }

        init(_ composed: Messenger.Composed) {
            id = Hex.encode(composed.id)
            to = composed.to.value
            keyWarning = composed.keysChanged?.warning
            waitsForCheckpoint = composed.waitsForCheckpoint
            circular = composed.circular.map(Hex.encode)
        }
    }

    let composed: [Item]
    let report: MessageSync.Report
    let offline: String?
    /// A circular's selector (nil for a plain list of names).
    var selector: String? = nil

    enum CodingKeys: String, CodingKey {
        case messages, waiting, circular
    }

    /// `{"messages": [{"id", "to", "state"}…], "waiting": "…" (offline only), "circular":
    /// {"id", "selector", "members"} (circulars only)}`.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let sent = Set(report.sent.map { Hex.encode($0.id) })
        try container.encode(composed.map { ["id": $0.id, "to": $0.to, "state": sent.contains($0.id) ? "accepted" : "waiting"] }, forKey: .messages)
        try container.encodeIfPresent(offline, forKey: .waiting)
        if let selector, let id = composed.first?.circular {
            try container.encode(CircularJSON(id: id, selector: selector, members: composed.count), forKey: .circular)
        }
    }

    struct CircularJSON: Encodable {
        let id: String
        let selector: String
        let members: Int
    }
}
