// Empty: this target exists so that `swift build --package-path Benchmarks` builds
// libMallocInterposerSwift.so, which `valise-bench crypto` is run with (LD_PRELOAD).
