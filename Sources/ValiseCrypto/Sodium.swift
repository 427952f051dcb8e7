import CSodium

/// libsodium's one-time initialisation, done before any call into the library.
///
/// A global `let` is initialised exactly once, atomically, on first use; every entry point
/// of this module reads it, so callers never have to remember `sodium_init()`.
enum Sodium {
    private static let initialised: Bool = sodium_init() >= 0

    /// Makes sure libsodium is ready. `sodium_init` only fails when the system cannot give it
    /// randomness, and nothing in Valise is safe to do without randomness, so that stops the
    /// process instead of going on with broken cryptography.
    @inline(__always)
    static func ensureInitialised() {
        precondition(initialised, "libsodium could not be initialised (no system randomness)")
    }

    /// Converts a libsodium return code to a thrown error: 0 is success, anything else fails.
    @inline(__always)
    static func check(_ returnCode: Int32, _ error: @autoclosure () -> CryptoError) throws(CryptoError) {
        guard returnCode == 0 else { throw error() }
    }
}
