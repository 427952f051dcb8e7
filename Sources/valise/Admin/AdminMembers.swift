import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto
import ValiseDirectory

struct AdminEnroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Enroll a member's device from its enrollment request.",
        discussion: """
            Shows the fingerprint in the request. Compare it with the one the member reads to \
            you from 'valise whoami', by a channel you trust: on a terminal you are asked to \
            confirm; in a script, pass it with --expect-fingerprint. With --home-relay, the \
            member's devices use that relay; without it, the organisation's default relay \
            (the first relay added).
            """
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var submission: SubmissionOptions

    @Argument(help: ArgumentHelp("The enrollment request file.", valueName: "request"))
    var request: String

    @Option(name: .long, help: ArgumentHelp("The mission's name (default: the mission part of the member name).", valueName: "mission"))
    var mission: String?

    @Option(name: .long, help: ArgumentHelp("The member's role.", valueName: "role"))
    var role: String = "staff"

    @Option(name: .long, help: ArgumentHelp("The fingerprint the member read out (spaces optional).", valueName: "digits"))
    var expectFingerprint: String?

    @Option(name: .long, help: ArgumentHelp(
        "The relay the member's devices use (default: the organisation's default relay, the first added).", valueName: "name"))
    var homeRelay: String?

    func run() throws {
        try submitEntry(options, submission) { (_, state) throws(ClientError) -> EntryBody in
            if let homeRelay { try HomeRelayArgument.check(homeRelay, in: state) }
            let request = try RequestFile.read(self.request)
            guard request.kind == .enrollment else {
                throw ClientError.usage("wrong-request", "\(self.request) is a rotation request: use valise admin rotate")
            }
            try FingerprintCheck.confirm(request.fingerprint, of: request.member.value, expected: expectFingerprint)
            let enrollment = Enrollment(request: request, mission: mission ?? String(request.member.mission), role: role)
            try checkInput { () throws(NameError) in
                try NameRule.checkText(enrollment.mission, what: "mission", maximum: Enrollment.maximumMissionLength)
                try NameRule.checkText(enrollment.role, what: "role", maximum: Enrollment.maximumRoleLength)
            }
            return homeRelay.map { .enrollAtHome(enrollment, home: $0) } ?? .enroll(enrollment)
        }
    }
}

struct AdminRotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Replace a member's keys from a rotation request.",
        discussion: """
            A rotation request from 'valise keys rotate' is signed by the old and the new key. \
            For a lost device there is no old key to sign: give the new device's enrollment \
            request and --lost-device; the entry records that the old key did not countersign. \
            The member keeps their home relay.
            """
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var submission: SubmissionOptions

    @Argument(help: ArgumentHelp("The member, name@mission.", valueName: "member"))
    var member: String

    @Argument(help: ArgumentHelp("The rotation (or, with --lost-device, enrollment) request.", valueName: "request"))
    var request: String

    @Flag(name: .long, help: "The old device is lost: accept new keys without the old key's signature.")
    var lostDevice = false

    @Option(name: .long, help: ArgumentHelp("The new fingerprint the member read out.", valueName: "digits"))
    var expectFingerprint: String?

    func run() throws {
        try submitEntry(options, submission) { (_, state) throws(ClientError) -> EntryBody in
            let name = try MemberName.argument(member)
            let request = try RequestFile.read(self.request)
            guard request.member == name else {
                throw ClientError.usage("wrong-request", "\(self.request) is for \(request.member), not \(name)")
            }
            guard let current = state.members[name] else { throw ClientError.usage("unknown-member", "\(name) is not a member") }
            switch request.kind {
            case .rotation:
                guard request.oldIdentityKey == current.identityKey else {
                    throw ClientError.usage("wrong-request", "the request replaces a key that is not \(name)'s current key")
                }
            case .enrollment:
                guard lostDevice else {
                    throw ClientError.usage(
                        "not-countersigned",
                        "\(self.request) is not signed by \(name)'s current key; if the old device is lost, say so with --lost-device")
                }
            }
            try FingerprintCheck.confirm(request.fingerprint, of: name.value, expected: expectFingerprint)
            // A rotation keeps the home relay: say which, so that nobody expects otherwise.
            if let home = state.homeRelay(of: name) {
                printNote("\(name) keeps home relay \(home.name)\(current.home == nil ? " (the default relay)" : "").")
            }
            return .rotate(Rotation(request: request, replacing: current.identityKey))
        }
    }
}

struct AdminRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a member (or one of their identity keys), with the reason.",
        discussion: """
            Revoking a member takes all of their keys out of use: relays refuse their \
            connections and colleagues stop encrypting to them. --identity-key revokes a \
            single key instead, for example an old key that was rotated out and then lost. \
            Shows the member and the fingerprint and asks for confirmation at the terminal, \
            unless --yes.
            """
    )

    @OptionGroup var options: AdminOptions
    @OptionGroup var submission: SubmissionOptions

    @Argument(help: ArgumentHelp("The member, name@mission.", valueName: "member"))
    var member: String?

    @Option(name: .long, help: ArgumentHelp("Revoke this identity key (hex) instead of a member.", valueName: "hex"))
    var identityKey: String?

    @Option(name: .long, help: ArgumentHelp("Why (kept in the directory).", valueName: "text"))
    var reason: String

    @Flag(name: .long, help: "Revoke without asking for confirmation (needed without a terminal).")
    var yes = false

    func validate() throws {
        if (member == nil) == (identityKey == nil) { throw ValidationError("give either a member or --identity-key") }
    }

    func run() throws {
        try submitEntry(options, submission) { (_, state) throws(ClientError) -> EntryBody in
            let target: Revocation.Target
            let described: String
            if let member {
                let name = try MemberName.argument(member)
                // Bad input, refused before anything is signed: not a rule the entry breaks.
                guard let record = state.members[name] else {
                    throw ClientError.usage("unknown-member", "\(name) is not a member of \(state.organisation); 'valise admin show' lists the members")
                }
                guard record.isActive else { throw ClientError.usage("already-revoked", "\(name) is already revoked") }
                target = .member(name)
                described = "\(name) (all keys; fingerprint \(record.fingerprint))"
            } else {
                guard let bytes = Hex.decode(identityKey ?? ""), let key = try? SigningPublicKey(bytes: bytes) else {
                    throw ClientError.usage("invalid-key", "--identity-key takes a 64-digit hexadecimal Ed25519 public key")
                }
                target = .identityKey(key)
                let owner = state.member(identityKey: key)
                let fingerprint = owner.map { Fingerprint(identityKey: key, memberName: $0.name.value).description }
                described = "the identity key \(Hex.encode(key.bytes).prefix(16))… of \(owner?.name.value ?? "no member listed")\(fingerprint.map { " (fingerprint \($0))" } ?? "")"
            }
            try checkInput { () throws(NameError) in
                try NameRule.checkText(reason, what: "reason", maximum: Revocation.maximumReasonLength)
            }
            try confirm(described)
            return .revoke(Revocation(target: target, reason: reason))
        }
    }

    /// Shows what will be revoked; at a terminal asks, without one needs --yes.
    private func confirm(_ described: String) throws(ClientError) {
        FileHandle.standardError.write(Data("revoke \(described), reason: \(reason)\n".utf8))
        guard !yes else { return }
        guard try Confirmation.ask("Revoke \(described)?", flagHint: "pass --yes to revoke without asking") else {
            throw ClientError.usage("not-confirmed", "not confirmed; nothing was changed")
        }
    }
}

/// Comparing a fingerprint with the one a person reads out.
enum FingerprintCheck {
    static func confirm(_ fingerprint: Fingerprint, of who: String, expected: String?) throws(ClientError) {
        if let expected {
            let digits = expected.filter(\.isNumber)
            guard digits == fingerprint.digits else {
                throw ClientError(
                    kind: .verification, code: "fingerprint-mismatch",
                    message: "the request's fingerprint for \(who) is \(fingerprint), not the expected \(expected); do not enroll it")
            }
            return
        }
        FileHandle.standardError.write(Data("fingerprint of \(who): \(fingerprint)\n".utf8))
        guard try Confirmation.ask(
            "Does \(who) read out exactly this fingerprint?",
            flagHint: "pass the fingerprint the member read out with --expect-fingerprint") else {
            throw ClientError.usage("not-confirmed", "not confirmed; nothing was changed")
        }
    }
}
