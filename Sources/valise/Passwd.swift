import ArgumentParser
import ValiseClient
import ValiseDirectory
import ValiseCrypto

extension Valise {
    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change the passphrase that protects this device's keystore.",
            discussion: """
                Re-encrypts the keystore under a new passphrase, with the current standard \
                key-derivation parameters. The old file stays in place until the new one is \
                safely written; then it is replaced in one step. No copy under the old \
                passphrase is kept.

                The current passphrase comes from --passphrase-file or $VALISE_PASSPHRASE or \
                the terminal; the new one from --new-passphrase-file or \
                $VALISE_NEW_PASSPHRASE or the terminal (asked twice).
                """
        )

        @OptionGroup var options: GlobalOptions

        @Option(name: .long, help: ArgumentHelp(
            "Read the new passphrase from the first line of this file (mode 0600).", valueName: "file"))
        var newPassphraseFile: String?

        @Option(name: .long, help: KDFProfileArgument.profileHelp)
        var kdfProfile: KDFProfileArgument = .standard

        func run() throws {
            let member = try reportingErrors { () throws(ClientError) -> String in
                let keystore = DeviceKeystore(home: try options.resolveHome())
                _ = try keystore.inspect()
                // The current passphrase is checked before the new one is asked for, so that a
                // mistyped one does not cost typing the new one twice first.
                let old = try Passphrases.unlocking(
                    file: options.passphraseFile, prompt: "Current passphrase for \(keystore.path): "
                ) { (passphrase) throws(ClientError) -> SecretBytes in
                    _ = try keystore.unlock(passphrase: passphrase)
                    return passphrase
                }
                let new = try Passphrases.new(
                    file: newPassphraseFile, flag: "--new-passphrase-file", variable: "VALISE_NEW_PASSPHRASE", prompt: "New passphrase: ")
                let identity = try keystore.changePassphrase(from: old, to: new, parameters: kdfProfile.parameters)
                return identity.memberName.value
            }
            if let warning = DeviceReport.weakKeystoreWarning(kdfProfile.parameters) { printWarning(warning) }
            if options.json {
                printJSON(["member": member, "status": "passphrase changed"])
            } else {
                print("Passphrase changed for \(member).")
            }
        }
    }
}
