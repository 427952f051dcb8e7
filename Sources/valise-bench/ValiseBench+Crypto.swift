import ArgumentParser
import CSodium

extension ValiseBench {
    /// The client's per-message cryptography against the bare libsodium and swift-crypto calls it makes.
    struct Crypto: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt+seal and open+decrypt one 256-byte message, against the raw libsodium and swift-crypto calls.",
            discussion: """
                Prints one JSON line: nanoseconds of this thread's CPU time (user and system) per \
                message (medians over the repetitions; Valise and raw take turns every 50 \
                messages), \
                the ratios Valise/raw (medians of the per-repetition ratios), sodium_malloc \
                calls per message, and heap allocations per message when ordo-one/malloc-interposer \
                is preloaded (null otherwise):

                  swift build -c release --package-path Benchmarks
                  LD_PRELOAD=Benchmarks/.build/release/libMallocInterposerSwift.so valise-bench crypto
                """)

        @Option(help: "Messages per repetition, each way.") var iterations = 2000
        @Option(help: "Repetitions (the median is reported).") var repetitions = 5

        func validate() throws {
            guard iterations > 0, repetitions > 0 else { throw ValidationError("iterations and repetitions must be positive") }
        }

        func run() throws {
            guard sodium_init() >= 0 else { throw ExitCode.failure }
            AllocationCounter.start()
            let result = CryptoBenchmark(iterations: iterations, repetitions: repetitions).run()
            let n = Double(iterations)
            let median = Statistics.median
            func nanoseconds(_ samples: [CryptoBenchmark.Sample]) -> Int { Int((median(samples.map(\.seconds)) * 1e9 / n).rounded()) }
            func ratio(_ valise: [CryptoBenchmark.Sample], _ raw: [CryptoBenchmark.Sample]) -> Double {
                Statistics.medianRatio(valise.map(\.seconds), raw.map(\.seconds))
            }
            func perMessage(_ samples: [CryptoBenchmark.Sample], _ count: (CryptoBenchmark.Sample) -> Int) -> String {
                "\((median(samples.map { Double(count($0)) }) / n * 100).rounded() / 100)"
            }
            let heap = AllocationCounter.countsHeap
            func heapPerMessage(_ samples: [CryptoBenchmark.Sample]) -> String { heap ? perMessage(samples, \.heap) : "null" }
            let allocations = heap
                ? "heap: ordo-one/malloc-interposer (preloaded); sodium_malloc: valise-bench's own forwarding definition"
                : "heap: not counted (preload ordo-one/malloc-interposer, see --help); sodium_malloc: valise-bench's own forwarding definition"
            print("""
                {"case":"crypto","iterations":\(iterations),"repetitions":\(repetitions),"clock":"thread CPU time",\
                "contentBytes":\(RawEnds.contentByteCount),"envelopeBytes":\(result.envelopeByteCount),\
                "encryptSealNs":\(nanoseconds(result.encrypt)),"rawEncryptSealNs":\(nanoseconds(result.rawEncrypt)),\
                "openDecryptNs":\(nanoseconds(result.decrypt)),"rawOpenDecryptNs":\(nanoseconds(result.rawDecrypt)),\
                "encryptRatio":\(ratio(result.encrypt, result.rawEncrypt)),"decryptRatio":\(ratio(result.decrypt, result.rawDecrypt)),\
                "allocsPerEncrypt":\(heapPerMessage(result.encrypt)),"allocsPerDecrypt":\(heapPerMessage(result.decrypt)),\
                "sodiumMallocsPerEncrypt":\(perMessage(result.encrypt, \.guarded)),"sodiumMallocsPerDecrypt":\(perMessage(result.decrypt, \.guarded)),\
                "rawAllocsPerEncrypt":\(heapPerMessage(result.rawEncrypt)),"rawAllocsPerDecrypt":\(heapPerMessage(result.rawDecrypt)),\
                "allocationCounter":"\(allocations)","rawCalls":"\(RawEnds.calls)"}
                """)
        }
    }
}

extension ValiseBench {
    /// A session start (PQXDH, the first message, its envelope) against the raw calls it needs.
    struct SessionStart: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "session-start",
            abstract: "Start a session and seal its first message, against the raw library calls.",
            discussion: """
                Prints one JSON line: nanoseconds of this thread's CPU time per session start \
                (medians over the repetitions; Valise and raw take turns every 10 starts) and the \
                ratio Valise/raw (the median of the per-repetition ratios). The raw side is the \
                issue's fixed list: 2 Ed25519 verifications, 4 X25519, 1 ML-KEM-1024 \
                encapsulation, 1 HKDF, 1 HPKE X-Wing seal.
                """)

        @Option(help: "Session starts per repetition.") var iterations = 400
        @Option(help: "Repetitions (the median is reported).") var repetitions = 5

        func validate() throws {
            guard iterations >= SessionStartBenchmark.sliceCount, repetitions > 0 else {
                throw ValidationError("iterations must be at least \(SessionStartBenchmark.sliceCount) and repetitions positive")
            }
        }

        func run() throws {
            guard sodium_init() >= 0 else { throw ExitCode.failure }
            let result = SessionStartBenchmark(iterations: iterations, repetitions: repetitions).run()
            let starts = Double(iterations / SessionStartBenchmark.sliceCount * SessionStartBenchmark.sliceCount)
            let median = Statistics.median
            let ratio = Statistics.medianRatio(result.valise, result.raw)
            print("""
                {"case":"session-start","iterations":\(Int(starts)),"repetitions":\(repetitions),"clock":"thread CPU time",\
                "envelopeBytes":\(result.envelopeByteCount),\
                "sessionStartNs":\(Int((median(result.valise) * 1e9 / starts).rounded())),\
                "rawSessionStartNs":\(Int((median(result.raw) * 1e9 / starts).rounded())),\
                "sessionStartRatio":\(ratio),\
                "breakdownNs":{\(result.breakdown.map { "\"\($0.0)\":\(Int(($0.1 * 1e9).rounded()))" }.joined(separator: ","))},\
                "rawCalls":"\(RawSessionStart.calls)"}
                """)
        }
    }
}
