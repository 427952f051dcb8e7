import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise {
    struct Whoami: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show this device's member name, key fingerprint and standing in the directory.",
            discussion: """
                Unlocks the keystore (or asks a running agent) and prints who this device belongs to and the \
                fingerprint of its identity key: 30 digits to compare with what your \
                colleagues and administrators see, read aloud or on paper. With an \
                organisation pinned, it also says whether the directory lists these keys, \
                and completes a key rotation the directory now shows.
                """
        )

        @OptionGroup var options: GlobalOptions

        func run() throws {
            let (device, standing, rotated) = try reportingErrors { () throws(ClientError) -> (DeviceReport, DeviceStanding?, Bool) in
                let home = try options.resolveHome()
                let keystore = DeviceKeystore(home: home)
                // Check the file before asking for a passphrase it could not unlock.
                let file = try keystore.inspect()
                let pinned = PinnedOrganisation(home: home)
                let state = pinned.exists ? try pinned.load(now: Environment.now()).state : nil
                // A running agent's keys do, as for every other command.
                let unlocked = try unlockDevice(options, home: home, warnAboutWeakKeystore: false)
                let (identity, changed) = try unlocked.reconciled(with: state, now: Environment.now())
                let standing = state.map { DeviceStanding(identity: identity, state: $0) }
                return (DeviceReport(identity: identity, path: keystore.path, parameters: file.parameters, standing: standing), standing, changed)
            }
            if let warning = DeviceReport.weakKeystoreWarning(device.keystore.parameters) { printWarning(warning) }
            if let standing, standing.isRevoked { printWarning(standing.description) }
            if options.json {
                printJSON(device)
                return
            }
            for line in device.lines { print(line) }
            if rotated { print("Key rotation completed: the directory lists the new keys, which this device now uses.") }
        }
    }
}

/// What the pinned directory says about this device.
struct DeviceStanding: Encodable, CustomStringConvertible {
    let status: String
    let detail: String
    /// The relay this device talks to (its member's home relay, or the organisation's
    /// default), with its addresses; nil when the member is not active or no relay is listed.
    let homeRelay: String?
    var isRevoked: Bool { status == "revoked" }

    init(identity: DeviceIdentity, state: DirectoryState) {
        homeRelay = state.members[identity.memberName].flatMap { member in
            member.isActive ? state.homeRelay(of: member.name).map(Self.describe) : nil
        }
        guard let member = state.members[identity.memberName] else {
            status = "not-enrolled"
            detail = "\(identity.memberName) is not in the directory yet (entry \(state.headSequence) is the newest this device has)"
            return
        }
        if case .revoked(let reason, let sequence) = member.status {
            status = "revoked"
            detail = "\(identity.memberName) was revoked at entry \(sequence): \(reason)"
        } else if member.identityKey == identity.identityKey.publicKey {
            status = identity.pending == nil ? "enrolled" : "rotation-pending"
            let since = member.retiredKeys.last.map { "keys rotated at entry \($0.retiredAt)" } ?? "entry \(member.enrolledAt)"
            detail = identity.pending == nil
                ? "enrolled (\(since)); the directory lists this device's keys"
                : "enrolled; a key rotation is waiting for an administrator"
        } else {
            status = "keys-differ"
            detail = "the directory lists other keys for \(identity.memberName) (fingerprint \(member.fingerprint)); this device is not the enrolled one"
        }
    }

    var description: String { detail }

    /// "geneva (geneva.example:7400, 10.1.2.3:7400)".
    static func describe(_ relay: RelayRecord) -> String {
        "\(relay.name) (\(relay.addresses.joined(separator: ", ")))"
    }
}
