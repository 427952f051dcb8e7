import CSodium

/// Secret bytes (keys, seeds, passphrases, shared secrets) in memory that libsodium guards.
///
/// The bytes live in `sodium_malloc`'d pages: guard pages on both sides, a canary, locked
/// against swapping where the system allows, and made read-only once filled. Releasing the
/// last reference wipes and unmaps them (`sodium_free`). The contents never appear in a
/// description, a debug dump or a mirror, and comparison is constant-time.
///
/// The class is immutable after initialisation, so sharing a reference never copies a secret
/// and concurrent reads are safe.
public final class SecretBytes: @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    /// The number of secret bytes.
    public let count: Int

    /// Allocates `count` bytes, lets `body` fill them, then makes them read-only.
    ///
    /// If `body` throws, the memory is wiped and released and the error is rethrown.
    public init<E: Error>(
        count: Int,
        initializingWith body: (UnsafeMutableRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        precondition(count >= 0, "SecretBytes count must not be negative")
        Sodium.ensureInitialised()
        // sodium_malloc only fails when the system is out of memory, like any allocation.
        guard let pointer = sodium_malloc(count) else {
            fatalError("out of memory: sodium_malloc(\(count)) failed")
        }
        // Fill before the properties are set: if `body` throws, no object exists yet, so
        // the memory is freed exactly once, here.
        do {
            try body(UnsafeMutableRawBufferPointer(start: pointer, count: count))
        } catch {
            sodium_free(pointer)
            throw error
        }
        self.base = pointer
        self.count = count
        // Read-only protection is a safety net, not a guarantee anything relies on; it fails
        // only when the system runs out of memory mappings.
        let protected = sodium_mprotect_readonly(pointer)
        assert(protected == 0, "sodium_mprotect_readonly failed")
    }

    /// Zero-filled secret bytes.
    public convenience init(zeroes count: Int) {
        self.init(count: count) { buffer in
            if count > 0 { sodium_memzero(buffer.baseAddress!, count) }
        }
    }

    /// Copies `bytes` into guarded memory. The caller still owns, and should wipe, its copy.
    public convenience init(copying bytes: some Collection<UInt8>) {
        self.init(count: bytes.count) { buffer in
            _ = buffer.initializeMemory(as: UInt8.self, fromContentsOf: bytes)
        }
    }

    /// `count` bytes from libsodium's CSPRNG.
    public static func random(count: Int) -> SecretBytes {
        SecretBytes(count: count) { buffer in
            if count > 0 { randombytes_buf(buffer.baseAddress!, count) }
        }
    }

    deinit {
        // sodium_free makes the pages writable again, checks the canary, wipes and unmaps.
        sodium_free(base)
    }

    /// Reads the secret bytes. Do not let the pointer escape, and do not copy the bytes into
    /// ordinary (unguarded) memory unless they are about to stop being secret.
    public func withUnsafeBytes<R, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Compares in constant time (for equal lengths); different lengths are never equal.
    public func constantTimeEquals(_ other: SecretBytes) -> Bool {
        guard count == other.count else { return false }
        if count == 0 { return true }
        return sodium_memcmp(base, other.base, count) == 0
    }

    /// A new secret holding `range` of this one.
    public func slice(_ range: Range<Int>) -> SecretBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "slice out of bounds")
        return SecretBytes(count: range.count) { buffer in
            if range.count > 0 {
                buffer.baseAddress!.copyMemory(from: base + range.lowerBound, byteCount: range.count)
            }
        }
    }

    /// A new secret holding the concatenation of `parts`.
    public static func concatenating(_ parts: [SecretBytes]) -> SecretBytes {
        let total = parts.reduce(0) { $0 + $1.count }
        return SecretBytes(count: total) { buffer in
            var offset = 0
            for part in parts where part.count > 0 {
                (buffer.baseAddress! + offset).copyMemory(from: part.base, byteCount: part.count)
                offset += part.count
            }
        }
    }
}

extension SecretBytes: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .class) }
}

/// Writable scratch memory in guarded pages for intermediate values that hold key material
/// (hash and HMAC states, padded keys). Wiped and released with the object.
final class SecureScratch {
    let pointer: UnsafeMutableRawPointer
    let count: Int

    /// `count` bytes, rounded up to a multiple of 64 so that the pointer libsodium returns
    /// (placed just below a guard page) is 64-byte aligned, as its hash states want.
    init(count: Int) {
        Sodium.ensureInitialised()
        let rounded = (count + 63) & ~63
        guard let pointer = sodium_malloc(rounded) else {
            fatalError("out of memory: sodium_malloc(\(rounded)) failed")
        }
        self.pointer = pointer
        self.count = rounded
        sodium_memzero(pointer, rounded)
    }

    func typed<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.size <= count)
        return pointer.bindMemory(to: type, capacity: 1)
    }

    /// For libsodium states that Swift imports as opaque (over-aligned C structs).
    var opaque: OpaquePointer { OpaquePointer(pointer) }

    deinit { sodium_free(pointer) }
}
