import ArgumentParser
import ValiseClient
import ValiseCrypto

extension Valise {
    struct Whoami: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show this device's member name and key fingerprint.",
            discussion: """
                Unlocks the keystore and prints who this device belongs to and the \
                fingerprint of its identity key: 30 digits to compare with what your \
                colleagues and administrators see, read aloud or on paper.
                """
        )

        @OptionGroup var options: GlobalOptions

        func run() throws {
            let device = try reportingErrors { () throws(ClientError) -> DeviceReport in
                let keystore = DeviceKeystore(home: try options.resolveHome())
                // Check the file before asking for a passphrase it could not unlock.
                _ = try keystore.inspect()
                let reader = PassphraseReader()
                let source = reader.source(file: options.passphraseFile, variable: "VALISE_PASSPHRASE")
                let passphrase = try reader.read(from: source, prompt: "Passphrase for \(keystore.path): ")
                let (identity, file) = try keystore.unlock(passphrase: passphrase)
                return DeviceReport(identity: identity, path: keystore.path, parameters: file.parameters)
            }
            let parameters = PasswordKDFParameters(
                profile: PasswordKDFParameters.Profile(name: device.keystore.kdfProfile) ?? .standard,
                iterations: device.keystore.kdfIterations, memoryKiB: device.keystore.kdfMemoryKiB
            )
            if let warning = DeviceReport.weakKeystoreWarning(parameters) { printWarning(warning) }
            if options.json {
                printJSON(device)
            } else {
                for line in device.lines { print(line) }
            }
        }
    }
}
