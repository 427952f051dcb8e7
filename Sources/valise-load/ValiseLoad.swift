import ArgumentParser
import ValiseCrypto

/// A small load and test client that speaks the relay protocol with random, sealed-looking
/// payloads (no end-to-end encryption): it drives the crash test and the queue benchmarks.
/// It uses real device keys, so the relay admits it like any device.
@main
struct ValiseLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "valise-load",
        abstract: "Relay protocol load and test client (for scripts/crash-test and scripts/bench).",
        subcommands: [Send.self, Receive.self, Bench.self, Connections.self]
    )

    static func main() async {
        ProcessHardening.apply()
        await main(nil)
    }
}
