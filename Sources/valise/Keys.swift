import ArgumentParser
import ValiseClient
import ValiseDirectory
import ValiseCrypto

extension Valise {
    struct Keys: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage this device's keys.",
            subcommands: [Rotate.self, Export.self]
        )

        struct Rotate: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make new keys and a rotation request for your key administrator.",
                discussion: """
                    Makes a new identity key and transport key and writes a rotation request, \
                    signed by both the old and the new identity key. The device keeps using \
                    its current keys until the directory shows the rotation; from then on it \
                    uses the new ones, and keeps the old private keys only to read messages \
                    already on their way, for 31 days, before wiping them. Running it again \
                    before the rotation is applied writes the same request again.
                    """
            )

            @OptionGroup var options: GlobalOptions

            @Option(name: .long, help: ArgumentHelp(
                "Where to write the rotation request (default: HOME/rotation.request).", valueName: "file"))
            var requestOut: String?

            func run() throws {
                let (member, fingerprint, path) = try reportingErrors { () throws(ClientError) -> (String, String, String) in
                    let home = try options.resolveHome()
                    let keystore = DeviceKeystore(home: home)
                    _ = try keystore.inspect()
                    let (request, identity) = try options.unlocking(keystore.path) { passphrase throws(ClientError) in
                        try keystore.startRotation(passphrase: passphrase, now: Environment.now())
                    }
                    let path = requestOut ?? home.rotationRequestPath
                    try RequestFile.write(request, to: path)
                    return (identity.memberName.value, request.fingerprint.description, path)
                }
                if options.json {
                    printJSON(["member": member, "newFingerprint": fingerprint, "request": path])
                    return
                }
                print("New keys made for \(member); the current keys stay in use until the directory shows the rotation.")
                print("new fingerprint: \(fingerprint)")
                print("Rotation request written to \(path): give it to your key administrator.")
            }
        }

        struct Export: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Back up this device's identity and transport keys, for a safe.",
                discussion: """
                    Writes the identity key and transport key, and nothing else, to FILE, \
                    encrypted under a backup passphrase of its own (at least 12 characters). \
                    Sessions, prekeys and message keys are never in a backup: deleting them is \
                    what keeps past messages secret. After losing this device, make a new one \
                    from the backup with 'valise init --from-backup FILE': it gets new keys and \
                    a rotation request signed by the backed-up key.
                    """
            )

            @OptionGroup var options: GlobalOptions

            @OptionGroup var backup: BackupExportOptions

            func run() throws {
                let (out, kdfProfile) = (backup.out, backup.kdfProfile)
                let exported = try reportingErrors { () throws(ClientError) -> DeviceKeyBackup in
                    try backup.checkOutIsFree()
                    let home = try options.resolveHome()
                    let keystore = DeviceKeystore(home: home)
                    _ = try keystore.inspect()
                    let pinned = PinnedOrganisation(home: home)
                    var directory: DirectoryState?
                    if pinned.exists { directory = try pinned.load(now: Environment.now()).state }
                    let passphrase = try options.passphrase(for: keystore.path)
                    let backupPassphrase = try backup.newPassphrase()
                    return try keystore.exportBackup(
                        passphrase: passphrase, directory: directory, to: out, backupPassphrase: backupPassphrase,
                        parameters: kdfProfile.parameters, now: Environment.now())
                }
                if let warning = DeviceReport.weakKeystoreWarning(kdfProfile.parameters) { printWarning(warning) }
                if options.json {
                    printJSON(["member": exported.memberName.value, "fingerprint": exported.fingerprint.description, "backup": out])
                    return
                }
                print("Backed up the identity and transport keys of \(exported.memberName) to \(out).")
                print("fingerprint: \(exported.fingerprint)")
                print("Keep it offline, apart from its passphrase. To replace a lost device: valise init --from-backup \(out)")
            }
        }
    }
}
