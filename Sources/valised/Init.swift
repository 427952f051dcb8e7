import ArgumentParser
import Foundation
import ValiseClient
import ValiseCrypto
import ValiseDirectory
import ValiseRelay
import ValiseStore

extension Valised {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set up a relay: its keys, and the organisation it serves.",
            discussion: """
                Makes the relay's Noise static key (which clients pin) and its Ed25519 signing \
                key, stores them in DIR/relay.key — encrypted under a passphrase, or with \
                --unencrypted-key readable by the relay's user only, for servers that must \
                start unattended — and pins the organisation bundle. Writes the public halves \
                to DIR/relay.pub: hand that file to a key administrator for 'valise admin \
                add-relay'.
                """
        )

        @Option(name: .long, help: ArgumentHelp("The relay's directory (created, mode 0700).", valueName: "dir"))
        var dir: String

        @Option(name: .long, help: ArgumentHelp("The organisation bundle from a key administrator.", valueName: "file"))
        var orgBundle: String

        @Flag(name: .long, help: "Store the keys unencrypted (mode 0600) so the relay can start without a passphrase.")
        var unencryptedKey = false

        @Option(name: .long, help: ArgumentHelp(
            "Read the new passphrase from this file (else $VALISED_PASSPHRASE, else the terminal).", valueName: "file"))
        var passphraseFile: String?

        @Option(name: .long, help: ArgumentHelp("Key derivation for the passphrase: standard, or insecure-test for tests.", valueName: "profile"))
        var kdfProfile: String = "standard"

        func run() throws {
            guard let profile = PasswordKDFParameters.Profile(name: kdfProfile) else {
                throw ValidationError("--kdf-profile is standard or insecure-test")
            }
            let keyFile = RelayKeyFile(directory: dir)
            do throws(ClientError) {
                try ValiseHome(path: dir).prepare()
                guard !keyFile.exists else {
                    throw ClientError.usage("relay-exists", "\(keyFile.path) exists already: this directory holds a relay")
                }
                let bundle = try DirectoryFileReader.read(orgBundle).bundle
                let now = Clock.now()
                try relayCall { () throws(RelayError) in try RelayDirectory.pin(bundle, directory: dir, now: now) }
                let keys = RelayKeys.generate(now: now)
                if unencryptedKey {
                    try keyCall { () throws(KeyFileError) in try keyFile.writeUnencrypted(keys) }
                } else {
                    var reader = PassphraseReader()
                    reader.noTerminalHint = "use --passphrase-file FILE, or set VALISED_PASSPHRASE, or --unencrypted-key"
                    let passphrase = try reader.readNew(
                        from: reader.source(file: passphraseFile, variable: "VALISED_PASSPHRASE"), prompt: "New passphrase for the relay key: ")
                    let file = EncryptedKeyFile<RelayKeys>(path: keyFile.path, missingHint: "")
                    _ = try keyCall { () throws(KeyFileError) in
                        try file.write(keys, passphrase: passphrase, parameters: PasswordKDFParameters.forProfile(profile))
                    }
                }
                let publicPath = dir + "/relay.pub"
                try RelayPublicKeyFile.write(keys.publicFile, to: publicPath)
                print("Relay set up in \(dir) for \"\(Self.organisation(of: bundle))\", genesis \(bundle.genesisHash).")
                print("fingerprint: \(RelayInitReport.fingerprint(of: keys))")
                print("noise key:   \(keys.noiseFingerprint.prefix(16))…")
                print("Public keys written to \(publicPath): give it to a key administrator for 'valise admin add-relay'.")
                if unencryptedKey { print("The keys are stored unencrypted in \(keyFile.path) (mode 0600): protect the disk and its backups.") }
            } catch {
                FileHandle.standardError.write(Data("valised: error: \(error.message)\n".utf8))
                throw ExitCode(ValisedExit.status(error.kind))
            }
        }

        /// The organisation's name, from the bundle's genesis.
        static func organisation(of bundle: OrganisationBundle) -> String {
            if case .genesis(let genesis) = bundle.entries[0].body { return genesis.organisation }
            return "an organisation"
        }
    }
}

/// What `valised init` prints of the relay's keys.
enum RelayInitReport {
    /// The relay's signing key in the project's fingerprint format (as a member's identity
    /// key, bound to the name "relay"): thirty digits to read aloud to the key administrator.
    static func fingerprint(of keys: RelayKeys) -> Fingerprint {
        Fingerprint(identityKey: keys.signing.publicKey, memberName: "relay")
    }
}

/// valised's exit statuses: those of valise's table (docs/CLI.md) that a relay can meet.
enum ValisedExit {
    static func status(_ kind: ClientError.Kind) -> Int32 {
        switch kind {
        case .wrongPassphrase: 2
        case .damaged: 3
        case .notSetUp: 4
        case .verification: 5
        case .usage: 64
        case .failure, .unreachable, .busy, .otherVersion: 1
        }
    }
}

/// Runs a call whose errors are relay errors, as client errors for uniform reporting.
func relayCall<T>(_ body: () throws(RelayError) -> T) throws(ClientError) -> T {
    do { return try body() } catch {
        // A bundle that failed verification is refused as valise refuses one (exit 5).
        throw ClientError(kind: error.protocolCode == .directoryRejected ? .verification : .failure, code: error.code, message: error.message)
    }
}

func keyCall<T>(_ body: () throws(KeyFileError) -> T) throws(ClientError) -> T {
    do { return try body() } catch { throw ClientError(error) }
}

enum Clock {
    static func now() -> UInt64 { UInt64(max(0, Int(Date().timeIntervalSince1970))) }
}
