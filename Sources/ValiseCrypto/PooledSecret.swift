import CSodium
import Synchronization

/// Fixed-size slots of guarded memory, handed out and taken back without a system call.
///
/// Each slab comes from `sodium_malloc` (guard pages around it, locked against swapping
/// where the system allows) and is kept for the life of the process; a slot is wiped when
/// it is given back. A `SecretBytes` maps and unmaps its own pages (about ten system calls
/// each way), which is right for long-lived keys but costs more than the cryptography for
/// values made once per message: those take a slot here instead. What a slot gives up is
/// a guard page of its own and read-only protection (its neighbours are other secrets).
final class SecretPool: Sendable {
    /// For short secrets: chain and message keys.
    static let keys = SecretPool(slotByteCount: 64, slotsPerSlab: 256)
    /// For the working state of one derivation (HMAC states, intermediate keys).
    static let scratch = SecretPool(slotByteCount: 512, slotsPerSlab: 16)

    let slotByteCount: Int
    private let slotsPerSlab: Int
    /// Addresses of free slots (as integers, which are Sendable).
    private let free: Mutex<[UInt]>

    /// Slot sizes are multiples of 64, so that every slot is as aligned as the slab, which
    /// `sodium_malloc` places just below a guard page.
    init(slotByteCount: Int, slotsPerSlab: Int) {
        precondition(slotByteCount > 0 && slotByteCount % 64 == 0 && slotsPerSlab > 0)
        self.slotByteCount = slotByteCount
        self.slotsPerSlab = slotsPerSlab
        free = Mutex([])
    }

    /// A zeroed slot of `slotByteCount` bytes.
    func take() -> UnsafeMutableRawPointer {
        let address = free.withLock { (list: inout [UInt]) -> UInt in
            if let address = list.popLast() { return address }
            return grow(&list)
        }
        return UnsafeMutableRawPointer(bitPattern: address)!
    }

    /// Wipes a slot from `take()` and makes it available again.
    func give(_ slot: UnsafeMutableRawPointer) {
        sodium_memzero(slot, slotByteCount)
        let address = UInt(bitPattern: slot)
        free.withLock { $0.append(address) }
    }

    /// Adds a slab; returns one of its slots and lists the others as free.
    private func grow(_ list: inout [UInt]) -> UInt {
        Sodium.ensureInitialised()
        let byteCount = slotByteCount * slotsPerSlab
        guard let slab = sodium_malloc(byteCount) else {
            fatalError("out of memory: sodium_malloc(\(byteCount)) failed")
        }
        sodium_memzero(slab, byteCount)
        let base = UInt(bitPattern: slab)
        list.reserveCapacity(list.count + slotsPerSlab)
        for index in stride(from: slotsPerSlab - 1, through: 1, by: -1) {
            list.append(base + UInt(index * slotByteCount))
        }
        return base
    }
}

/// A short secret (at most 64 bytes: a chain key, a message key) in a slot of pooled guarded
/// memory (`SecretPool`), wiped when released. For values made once per message, where a
/// `SecretBytes` of their own would cost more than the cryptography that uses them.
///
/// Immutable after initialisation, like `SecretBytes`; never shown in a description.
public final class PooledSecret: @unchecked Sendable {
    public static let maximumByteCount = 64

    private let base: UnsafeMutableRawPointer
    public let count: Int

    /// Takes a slot, lets `body` fill `count` bytes of it; if `body` throws, the slot is
    /// wiped and given back.
    init<E: Error>(count: Int, initializingWith body: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        precondition((0...Self.maximumByteCount).contains(count), "PooledSecret holds at most 64 bytes")
        let slot = SecretPool.keys.take()
        do {
            try body(UnsafeMutableRawBufferPointer(start: slot, count: count))
        } catch {
            SecretPool.keys.give(slot)
            throw error
        }
        base = slot
        self.count = count
    }

    /// Copies a secret, or `range` of it, of at most 64 bytes.
    public convenience init(copying secret: SecretBytes, range: Range<Int>? = nil) {
        let range = range ?? 0..<secret.count
        precondition(range.lowerBound >= 0 && range.upperBound <= secret.count, "range out of bounds")
        self.init(count: range.count) { out in
            secret.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[range])) }
        }
    }

    deinit { SecretPool.keys.give(base) }

    /// Reads the secret bytes. Do not let the pointer escape.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// A copy in its own guarded pages, for keeping beyond the message (skipped keys).
    public var secretBytes: SecretBytes {
        SecretBytes(count: count) { out in out.copyMemory(from: UnsafeRawBufferPointer(start: base, count: count)) }
    }

    /// Compares in constant time (for equal lengths); different lengths are never equal.
    public func constantTimeEquals(_ other: PooledSecret) -> Bool {
        guard count == other.count else { return false }
        if count == 0 { return true }
        return sodium_memcmp(base, other.base, count) == 0
    }
}

extension PooledSecret: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "PooledSecret(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .class) }
}
