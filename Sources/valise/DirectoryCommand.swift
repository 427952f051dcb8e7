import ArgumentParser
import ValiseClient
import ValiseCrypto
import ValiseDirectory

extension Valise {
    struct Directory: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an organisation directory.",
            subcommands: [VerifyLog.self]
        )

        struct VerifyLog: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "verify",
                abstract: "Verify a directory log or bundle and print what it says.",
                discussion: """
                    Checks every entry: the hash chain, each admin signature and the number \
                    of them, the order of sequence numbers and times, and the rules (no \
                    second enrollment of an active member, no rotation of a revoked one, …). \
                    The genesis is checked against this device's pinned organisation, else \
                    against --genesis, else taken from the file itself, which proves only \
                    that the file is consistent, not whose it is. Prints the resulting \
                    directory, or the first entry that fails and why.
                    """
            )

            @OptionGroup var options: GlobalOptions

            @Argument(help: ArgumentHelp("A directory log or an organisation bundle.", valueName: "file"))
            var file: String

            @Option(name: .long, help: ArgumentHelp("The genesis hash to check against.", valueName: "hash"))
            var genesis: String?

            func validate() throws {
                if let genesis, EntryHash(hex: genesis) == nil {
                    throw ValidationError("--genesis takes the 64 hexadecimal digits of a genesis hash")
                }
            }

            func run() throws {
                let (report, source) = try reportingErrors { () throws(ClientError) -> (DirectoryReport, String) in
                    let contents = try DirectoryFileReader.read(file)
                    let home = try options.resolveHome()
                    let pinned = PinnedOrganisation(home: home)
                    let pin: EntryHash?
                    let source: String
                    if pinned.exists {
                        pin = try pinned.load(now: Environment.now()).bundle.genesisHash
                        source = "checked against the organisation pinned in \(home.path)"
                    } else if let genesis {
                        pin = EntryHash(hex: genesis)
                        source = "checked against the genesis given with --genesis"
                    } else {
                        pin = nil
                        source = "NOT PINNED: the genesis was taken from the file itself; this shows the log is consistent, not that it is your organisation's"
                    }
                    do throws(DirectoryError) {
                        let verifier = try DirectoryVerifier.verify(contents.entries, pinnedGenesis: pin, now: Environment.now())
                        try contents.checkpoint?.verify(against: verifier, now: Environment.now())
                        return (DirectoryReport(state: verifier.state!, checkpoint: contents.checkpoint, now: Environment.now()), source)
                    } catch {
                        throw ClientError(error, file: file)
                    }
                }
                if source.hasPrefix("NOT PINNED") { printWarning(source) }
                if options.json {
                    printJSON(report)
                    return
                }
                print("valid: \(report.entries) entries, \(source.hasPrefix("NOT PINNED") ? "not pinned" : source)")
                for line in report.lines { print(line) }
            }
        }
    }
}
