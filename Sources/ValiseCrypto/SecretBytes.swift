import CSodium

/// Secret bytes (keys, seeds, passphrases, shared secrets) in memory that libsodium guards.
///
/// The bytes live in `sodium_malloc`'d memory, with guard pages and a canary, locked
/// against swapping where the system allows. Small secrets (up to 512 bytes: keys, chaining
/// keys, HMAC blocks) take a slot of the shared `SecretArena`, so that holding thousands of
/// connections' keys costs their size and not two pages and four mappings each; larger ones
/// get a region of their own, made read-only once filled. Releasing the last reference wipes
/// the bytes. Only when the system can give no guarded memory at all do they fall back to
/// ordinary memory, still wiped on release (`SecureAllocation`). The contents never appear
/// in a description, a debug dump or a mirror, and comparison is constant-time.
///
/// The class is immutable after initialisation, so sharing a reference never copies a secret
/// and concurrent reads are safe.
public final class SecretBytes: @unchecked Sendable {
    private let allocation: SecureAllocation
    private var base: UnsafeMutableRawPointer { allocation.pointer }
    /// The number of secret bytes.
    public var count: Int { allocation.count }

    /// Allocates `count` bytes, lets `body` fill them, then makes them read-only where they
    /// have pages of their own.
    ///
    /// If `body` throws, the memory is wiped and released and the error is rethrown.
    public init<E: Error>(
        count: Int,
        initializingWith body: (UnsafeMutableRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        precondition(count >= 0, "SecretBytes count must not be negative")
        let allocation = SecureAllocation.allocate(count)
        // Fill before the properties are set: if `body` throws, no object exists yet, so
        // the memory is released exactly once, here.
        do {
            try body(UnsafeMutableRawBufferPointer(start: allocation.pointer, count: count))
        } catch {
            allocation.release()
            throw error
        }
        self.allocation = allocation
        // Read-only protection is a safety net, not a guarantee anything relies on (a slot
        // shares its pages with other secrets, so only a region of its own gets it).
        allocation.protectReadOnly()
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
        allocation.release()
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
    private let allocation: SecureAllocation
    var pointer: UnsafeMutableRawPointer { allocation.pointer }
    var count: Int { allocation.count }

    /// `count` bytes, rounded up to a multiple of 64, so that both an arena slot and a
    /// region of its own (which libsodium places just below a guard page) are 64-byte
    /// aligned, as libsodium's hash states want.
    init(count: Int) {
        let rounded = (count + 63) & ~63
        allocation = SecureAllocation.allocate(rounded)
        sodium_memzero(allocation.pointer, rounded)
    }

    func typed<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.size <= count)
        return pointer.bindMemory(to: type, capacity: 1)
    }

    /// For libsodium states that Swift imports as opaque (over-aligned C structs).
    var opaque: OpaquePointer { OpaquePointer(pointer) }

    deinit { allocation.release() }
}
