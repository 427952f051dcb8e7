import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

/// `valise admin keys export|restore`: an admin's keys, backed up for a safe.
struct AdminKeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Back up your admin keys, or restore them from a backup.",
        subcommands: [AdminKeysExport.self, AdminKeysRestore.self]
    )
}

struct AdminKeysExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write your admin keys to a backup file, under a backup passphrase of its own.",
        discussion: """
            The backup holds the admin signing key and transport key (admin.key's contents), \
            encrypted under a separate backup passphrase. Keep it offline, apart from that \
            passphrase. Restore it with 'valise admin keys restore'.
            """
    )

    @OptionGroup var options: AdminOptions

    @OptionGroup var backup: BackupExportOptions

    func run() throws {
        let (out, kdfProfile) = (backup.out, backup.kdfProfile)
        let admin = try reportingErrors { () throws(ClientError) -> AdminKeys in
            try backup.checkOutIsFree()
            let admin = try options.unlockAdmin()
            let backupPassphrase = try backup.newPassphrase()
            try AdminKeyBackup.file(at: out).write(AdminKeyBackup(keys: admin), passphrase: backupPassphrase, parameters: kdfProfile.parameters)
            return admin
        }
        if let warning = DeviceReport.weakKeystoreWarning(kdfProfile.parameters) { printWarning(warning) }
        if options.json {
            printJSON(["admin": admin.name, "fingerprint": admin.fingerprint.description, "backup": out])
            return
        }
        print("Backed up the keys of admin \(admin.name) to \(out).")
        print("fingerprint: \(admin.fingerprint)")
        print("Keep it offline, apart from its passphrase. To restore: valise admin keys restore \(out) --out DIR")
    }
}

struct AdminKeysRestore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore your admin keys from a backup into a key directory.",
        discussion: """
            Writes DIR/admin.key (under a new passphrase) and DIR/admin.pub from a backup made \
            by 'valise admin keys export'. The keys are the same keys: an admin key holds no \
            session state. If the machine that held them was lost or stolen, the key must be \
            treated as exposed: have the admins replace it with 'valise admin set-admins'.
            """
    )

    @Argument(help: ArgumentHelp("The backup file.", valueName: "backup"))
    var backup: String

    @Option(name: .long, help: ArgumentHelp("The key directory to write (it must not hold an admin.key).", valueName: "dir"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("Read the new passphrase of admin.key from this file (mode 0600).", valueName: "file"))
    var passphraseFile: String?

    @Option(name: .long, help: ArgumentHelp(
        "Read the backup's passphrase from the first line of this file (else $VALISE_BACKUP_PASSPHRASE, else the terminal).",
        valueName: "file"))
    var backupPassphraseFile: String?

    @Option(name: .long, help: KDFProfileArgument.profileHelp)
    var kdfProfile: KDFProfileArgument = .standard

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let (admin, keys) = try reportingErrors { () throws(ClientError) -> (AdminKeys, KeyDirectory) in
            let keys = KeyDirectory(path: out)
            guard !keys.adminKey.exists else { throw ClientError.usage("admin-exists", "\(keys.adminKey.path) exists already") }
            let backupFile = AdminKeyBackup.file(at: backup)
            _ = try backupFile.inspect()
            let admin = try BackupPassphrase.unlocking(file: backupPassphraseFile, path: backup) { passphrase throws(ClientError) in
                try backupFile.unlock(passphrase: passphrase).payload.keys
            }
            let passphrase = try Passphrases.new(file: passphraseFile, prompt: "New passphrase for admin \(admin.name): ")
            try keys.prepare()
            try keys.adminKey.write(admin, passphrase: passphrase, parameters: kdfProfile.parameters)
            try AdminPublicKeyFile.write(admin.publicFile, to: keys.adminPublicPath)
            return (admin, keys)
        }
        if let warning = DeviceReport.weakKeystoreWarning(kdfProfile.parameters) { printWarning(warning) }
        if json {
            printJSON(["admin": admin.name, "fingerprint": admin.fingerprint.description, "key": keys.adminKey.path, "publicFile": keys.adminPublicPath])
            return
        }
        print("Restored the keys of admin \(admin.name) to \(keys.adminKey.path).")
        print("fingerprint: \(admin.fingerprint)")
        print("If the machine that held them was lost, have the admins replace this key with 'valise admin set-admins'.")
    }
}
