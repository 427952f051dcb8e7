import CSodium
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps a process that holds keys from leaking them through its own failure paths. The
/// executables call `apply()` first thing.
public enum ProcessHardening {
    /// - every file and directory the process creates is private to its owner (umask 077):
    ///   files that are not made by a chmod after the fact, such as SQLite's database and
    ///   its -wal and -shm, and JSON status files, would otherwise be world-readable under
    ///   the usual umask 022. Files meant to be shared (public keys, bundles, requests) are
    ///   written with an explicit mode, which the umask does not narrow;
    /// - no core files, and the process is not dumpable (other processes of the same user
    ///   can neither attach to it nor read its memory or environment);
    /// - crash signals go back to their default action, so a crash ends the process
    ///   without Swift's in-process backtracer, which prints registers and the memory they
    ///   point to — possibly key material — to the terminal.
    public static func apply() {
        umask(0o077)
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(Int32(RLIMIT_CORE.rawValue), &noCore)
        _ = valise_set_not_dumpable()
        for crash in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGQUIT, SIGSYS] {
            signal(crash, SIG_DFL)
        }
    }
}
