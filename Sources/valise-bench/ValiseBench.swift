import ArgumentParser
import CSodium

/// Measurements for docs/PERFORMANCE.md, run by scripts/bench in a release build. Prints
/// one JSON object per case; the script turns them into the document's tables.
@main
struct ValiseBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "valise-bench",
        abstract: "Valise benchmarks (use scripts/bench, which builds in release mode).",
        subcommands: [Directory.self, Crypto.self, SessionStart.self, FillQueue.self, Handshake.self]
    )

    struct Directory: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decode and verify a directory log from its genesis.")

        @Option(help: "Entries in the log.") var entries = 10_000
        @Option(help: "Repetitions (the median is reported).") var repetitions = 5

        func run() throws {
            guard sodium_init() >= 0 else { throw ExitCode.failure }
            let result = DirectoryBenchmark(entryCount: entries, repetitions: repetitions).run()
            let median = Statistics.median
            print("""
                {"case":"directory-verify","entries":\(result.entries),"signaturesPerEntry":\(result.signaturesPerEntry),\
                "fileBytes":\(result.fileBytes),"medianSeconds":\(median(result.decodeAndVerifySeconds)),\
                "decodeMedianSeconds":\(median(result.decodeSeconds)),\
                "sequentialMedianSeconds":\(median(result.sequentialSeconds)),\
                "rawLibsodiumMedianSeconds":\(median(result.rawLibsodiumSeconds)),\
                "runs":\(result.decodeAndVerifySeconds),"rawRuns":\(result.rawLibsodiumSeconds)}
                """)
        }
    }
}
