import Synchronization

#if canImport(Glibc)
import Glibc

/// Allocation counts for `crypto`.
///
/// - Heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign,
///   valloc) come from ordo-one/malloc-interposer when the process runs with its library
///   preloaded (Benchmarks/Package.swift builds it); otherwise they are not counted. The
///   executable cannot define `malloc` itself: Swift reserves that symbol name.
/// - `sodium_malloc` calls (guarded pages from mmap, which malloc counting never sees) are
///   counted here: this executable defines `sodium_malloc`, which the linker binds Valise's
///   calls to, and forwards each call to libsodium's.
enum AllocationCounter {
    private typealias Control = @convention(c) () -> Void
    private typealias Statistics = @convention(c) (
        UnsafeMutablePointer<Int64>, UnsafeMutablePointer<Int64>, UnsafeMutablePointer<Int64>,
        UnsafeMutablePointer<Int64>, UnsafeMutablePointer<Int64>, UnsafeMutablePointer<Int64>
    ) -> Void

    private static func symbol<T>(_ name: String, as type: T.Type) -> T? {
        // RTLD_DEFAULT: the preloaded library, if there is one.
        dlsym(nil, name).map { unsafeBitCast($0, to: type) }
    }

    private static let enable = symbol("malloc_interposer_enable", as: Control.self)
    private static let statistics = symbol("malloc_interposer_get_stats", as: Statistics.self)

    /// Whether heap allocations are counted (the interposer is preloaded).
    static var countsHeap: Bool { enable != nil && statistics != nil }

    /// Starts counting heap allocations (a no-op without the interposer).
    static func start() { enable?() }

    /// Heap allocations so far, or 0 without the interposer.
    static var heap: Int {
        guard let statistics else { return 0 }
        var count: Int64 = 0, bytes: Int64 = 0, small: Int64 = 0, large: Int64 = 0, freed: Int64 = 0, freedBytes: Int64 = 0
        statistics(&count, &bytes, &small, &large, &freed, &freedBytes)
        return Int(count)
    }

    /// `sodium_malloc` calls so far.
    static var guarded: Int { guardedAllocations.load(ordering: .relaxed) }
}

private let guardedAllocations = Atomic<Int>(0)

private typealias SodiumMalloc = @convention(c) (Int) -> UnsafeMutableRawPointer?
/// libsodium's own sodium_malloc (RTLD_NEXT: the next definition after this executable's).
private let libsodiumMalloc: SodiumMalloc = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: -1), "sodium_malloc") else {
        fatalError("valise-bench: libsodium's sodium_malloc not found")
    }
    return unsafeBitCast(symbol, to: SodiumMalloc.self)
}()

@_cdecl("sodium_malloc")
func countingSodiumMalloc(_ size: Int) -> UnsafeMutableRawPointer? {
    guardedAllocations.add(1, ordering: .relaxed)
    return libsodiumMalloc(size)
}

#else

enum AllocationCounter {
    static var countsHeap: Bool { false }
    static func start() {}
    static var heap: Int { 0 }
    static var guarded: Int { 0 }
}

#endif
