import ArgumentParser
import ValiseClient
import ValiseDirectory
import ValiseCrypto

extension Valise {
    struct Keys: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage this device's keys.",
            subcommands: [Rotate.self]
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
                    let passphrase = try options.passphrase(for: keystore.path)
                    let (request, identity) = try keystore.startRotation(passphrase: passphrase, now: Environment.now())
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
    }
}
