import ArgumentParser
import Foundation
import CSodium
import ValiseWire

extension ValiseBench {
    /// The relay's handshakes per second: hybrid (what it serves) against classical XK.
    struct Handshake: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Relay-side handshakes per second, Noise_XKhfs (ML-KEM-768) against the classical Noise_XK.",
            discussion: """
                Prints one JSON line (responder handshakes per second of this thread's CPU time, \
                medians over the repetitions, the hybrid/classical ratio as the median of the \
                per-repetition ratios, and each handshake's frame sizes), then the issue's target line.
                """)

        @Option(help: "Handshakes per repetition, of each kind.") var iterations = 1000
        @Option(help: "Repetitions (the median is reported).") var repetitions = 5

        func validate() throws {
            guard iterations > 0, repetitions > 0 else { throw ValidationError("iterations and repetitions must be positive") }
        }

        func run() throws {
            guard sodium_init() >= 0 else { throw ExitCode.failure }
            let result = HandshakeBenchmark(iterations: iterations, repetitions: repetitions).run()
            let median = Statistics.median
            let ratio = Statistics.medianRatio(result.hybrid.map(\.perSecond), result.classical.map(\.perSecond))
            let hybrid = median(result.hybrid.map(\.perSecond)).rounded()
            let classical = median(result.classical.map(\.perSecond)).rounded()
            print("""
                {"case":"handshake","iterations":\(iterations),"repetitions":\(repetitions),"clock":"thread CPU time",\
                "hybridProtocol":"\(ValiseTransport.clientProtocol.name)","classicalProtocol":"\(NoiseProtocol.classicalClientRelay.name)",\
                "hybridPerSecond":\(Int(hybrid)),"classicalPerSecond":\(Int(classical)),"ratio":\(ratio),\
                "hybridRuns":\(result.hybrid.map { Int($0.perSecond.rounded()) }),"classicalRuns":\(result.classical.map { Int($0.perSecond.rounded()) }),\
                "hybridFrames":\(ValiseTransport.clientProtocol.messageLengths),"classicalFrames":\(NoiseProtocol.classicalClientRelay.messageLengths)}
                """)
            print("target: relay handshakes/s: hybrid/classical-XK = \(String(format: "%.2f", ratio)) (goal >= 0.60)")
        }
    }
}
