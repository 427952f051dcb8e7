import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseStore

/// The passphrase of a key backup: from `--backup-passphrase-file FILE`, else
/// `$VALISE_BACKUP_PASSPHRASE`, else the terminal. It is separate from the keystore's, so
/// that a backup in a safe does not fall with the passphrase of the machine it came from.
enum BackupPassphrase {
    static let flag = "--backup-passphrase-file"
    static let variable = "VALISE_BACKUP_PASSPHRASE"

    /// A new backup passphrase (asked twice at a terminal, at least 12 characters).
    static func new(file: String?) throws(ClientError) -> SecretBytes {
        try Passphrases.new(file: file, flag: flag, variable: variable, prompt: "New passphrase for the backup: ")
    }

    /// Opens the backup at `path` with its passphrase, asking again at a terminal when it is
    /// wrong (three tries, as for a keystore).
    static func unlocking<T>(file: String?, path: String, _ body: (SecretBytes) throws(ClientError) -> T) throws(ClientError) -> T {
        var reader = PassphraseReader()
        reader.noTerminalHint = "use \(flag) FILE, or set \(variable) for automation"
        return try reader.unlock(from: reader.source(file: file, variable: variable), prompt: "Passphrase of the backup \(path): ", body)
    }
}

/// The options both key exports share (`valise keys export`, `valise admin keys export`).
struct BackupExportOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Where to write the backup (it must not exist).", valueName: "file"))
    var out: String

    @Option(name: .long, help: ArgumentHelp(
        "Read the backup's passphrase from the first line of this file (else $VALISE_BACKUP_PASSPHRASE, else asked twice).",
        valueName: "file"))
    var backupPassphraseFile: String?

    @Option(name: .long, help: KDFProfileArgument.profileHelp)
    var kdfProfile: KDFProfileArgument = .standard

    /// Refuses, before any passphrase is asked, to write over an existing file.
    func checkOutIsFree() throws(ClientError) {
        guard !SecureFile.exists(out) else { throw ClientError.usage("backup-exists", "\(out) exists already; choose another file") }
    }

    /// The new backup passphrase.
    func newPassphrase() throws(ClientError) -> SecretBytes { try BackupPassphrase.new(file: backupPassphraseFile) }
}
