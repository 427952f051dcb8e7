import ValiseClient
import ValiseCrypto

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

    /// The passphrase that opens the backup at `path`.
    static func unlock(file: String?, path: String) throws(ClientError) -> SecretBytes {
        var reader = PassphraseReader()
        reader.noTerminalHint = "use \(flag) FILE, or set \(variable) for automation"
        return try reader.read(from: reader.source(file: file, variable: variable), prompt: "Passphrase of the backup \(path): ")
    }
}
