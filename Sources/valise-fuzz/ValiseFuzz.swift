// libFuzzer's entry point for the parsers in ValiseFuzzTargets. Built for fuzzing only by
// scripts/fuzz (swift build --sanitize=fuzzer,address -Xswiftc -DVALISE_FUZZ), which names the
// target in VALISE_FUZZ_TARGET; libFuzzer then provides `main`. In an ordinary build this
// program writes a target's seeds made in code (`valise-fuzz seeds TARGET DIR`).
import Foundation
import ValiseFuzzTargets

#if VALISE_FUZZ
private let target: String = {
    let name = ProcessInfo.processInfo.environment["VALISE_FUZZ_TARGET"] ?? ""
    guard FuzzTargets.names.contains(name) else {
        fatalError("set VALISE_FUZZ_TARGET to one of: \(FuzzTargets.names.joined(separator: ", "))")
    }
    return name
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTargets.run(target, input)
    return 0
}
#else
@main
struct ValiseFuzz {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count == 4, arguments[1] == "seeds", FuzzTargets.names.contains(arguments[2]) else {
            print("valise-fuzz is built for libFuzzer by scripts/fuzz TARGET SECONDS; targets: \(FuzzTargets.names.joined(separator: ", "))")
            exit(arguments.count == 1 ? 0 : 2)
        }
        for (index, seed) in FuzzTargets.seeds(arguments[2]).enumerated() {
            _ = FileManager.default.createFile(atPath: "\(arguments[3])/seed-\(index)", contents: Data(seed))
        }
    }
}
#endif
