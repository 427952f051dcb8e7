// swift-tools-version: 6.1
import PackageDescription

// Builds ordo-one/malloc-interposer's preloadable library for `valise-bench crypto`, which
// reads its counters when it is preloaded:
//
//     swift build -c release --package-path Benchmarks
//     LD_PRELOAD=Benchmarks/.build/release/libMallocInterposerSwift.so valise-bench crypto
//
// (A separate package because the root's benchmark executable must not depend on it: the
// library replaces malloc for the whole process, which only a measuring run wants.)
let package = Package(
    name: "valise-benchmarks",
    dependencies: [
        .package(url: "https://github.com/ordo-one/malloc-interposer", from: "1.6.1"),
    ],
    targets: [
        // Only here so that building this package builds the interposer's library.
        .target(
            name: "MallocCounter",
            dependencies: [.product(name: "MallocInterposerSwift", package: "malloc-interposer")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
