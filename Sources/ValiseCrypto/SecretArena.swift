import CSodium
import Synchronization

/// Guarded memory shared by small secrets: chunks of `sodium_malloc`'d memory (a guard page
/// on each side, a canary before, locked against swapping where the system allows) carved
/// into fixed-size slots by size class. A slot is wiped when its secret is released, and
/// only then handed out again.
///
/// Why not one `sodium_malloc` region per secret: each costs four memory mappings, two
/// resident pages (8 KiB for a 32-byte key) and about ten system calls to make and free. A
/// relay holding 10,000 connections, each with two transport keys, would need 80,000
/// mappings — past Linux's default `vm.max_map_count` of 65,530, where `sodium_malloc`
/// fails — and 160 MiB; and every Noise handshake makes and frees about a hundred
/// short-lived secrets. In a slot a secret costs its size class and a lock.
///
/// What a slot gives up against its own region: neighbouring slots hold other secrets, not
/// guard pages, and a slot cannot be made read-only on its own. Secrets larger than the
/// largest class still get their own region (`SecureAllocation`).
///
/// Chunks are never unmapped: the arena keeps its peak size (bounded by what the process
/// holds at once, e.g. by the relay's connection limit) and reuses wiped slots.
final class SecretArena: Sendable {
    /// The process's arena.
    static let shared = SecretArena()

    /// Slot sizes, in bytes. Every class from 64 up keeps slots 64-byte aligned, as
    /// libsodium's hash states want.
    static let slotSizes = [32, 64, 128, 256, 512]
    static var largestSlot: Int { slotSizes[slotSizes.count - 1] }

    /// One chunk: 64 KiB less 64 bytes, so that libsodium, which ends a region at a page
    /// boundary (its guard page) with a 16-byte canary before it, starts it 64-byte aligned
    /// on any page size up to 64 KiB.
    static let chunkByteCount = 65_536 - 64

    /// Free slots each class keeps in hand when asked for headroom (`reserve`): a Noise
    /// handshake holds about ten at once, so this covers a dozen handshakes in progress.
    static let headroomSlots = 128

    /// A slot's address, as the free lists keep it.
    private struct Slot: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private struct State: ~Copyable {
        var free: [[Slot]] = Array(repeating: [], count: SecretArena.slotSizes.count)
        var chunks = 0
        var slotsInUse = 0
    }

    private let state = Mutex(State())
    /// Makes a chunk; `sodium_malloc` in production, a failing one in tests.
    private let makeChunk: @Sendable (Int) -> UnsafeMutableRawPointer?

    init(makeChunk: @escaping @Sendable (Int) -> UnsafeMutableRawPointer? = { sodium_malloc($0) }) {
        self.makeChunk = makeChunk
    }

    /// The size class index for `count` bytes, or nil when a secret is too large for a slot.
    static func sizeClass(for count: Int) -> Int? {
        slotSizes.firstIndex { count <= $0 }
    }

    /// A wiped slot of at least `count` bytes, or nil when `count` is too large for a slot
    /// or the arena could not grow (the system is out of memory or of mappings).
    func allocate(_ count: Int) -> UnsafeMutableRawPointer? {
        guard let sizeClass = Self.sizeClass(for: count) else { return nil }
        let slot = state.withLock { state -> Slot? in
            if state.free[sizeClass].isEmpty && !grow(&state, sizeClass) { return nil }
            state.slotsInUse += 1
            return state.free[sizeClass].removeLast()
        }
        return slot?.pointer
    }

    /// Wipes the slot and takes it back.
    func release(_ slot: UnsafeMutableRawPointer, count: Int) {
        guard let sizeClass = Self.sizeClass(for: count) else { preconditionFailure("not an arena slot") }
        sodium_memzero(slot, Self.slotSizes[sizeClass])
        let wiped = Slot(pointer: slot)
        state.withLock { state in
            state.slotsInUse -= 1
            state.free[sizeClass].append(wiped)
        }
    }

    /// Makes sure every class has `slots` free slots, growing where it must; false when
    /// the arena could not grow. The relay asks before it takes a connection, so that
    /// running out of guarded memory refuses new connections instead of stopping the relay.
    func reserve(slots: Int = SecretArena.headroomSlots) -> Bool {
        state.withLock { state in
            for sizeClass in Self.slotSizes.indices {
                while state.free[sizeClass].count < slots {
                    if !grow(&state, sizeClass) { return false }
                }
            }
            return true
        }
    }

    /// Chunks made so far, and slots handed out and not yet released.
    var usage: (chunks: Int, slotsInUse: Int) {
        state.withLock { ($0.chunks, $0.slotsInUse) }
    }

    /// Adds one chunk's slots to a class's free list.
    private func grow(_ state: inout State, _ sizeClass: Int) -> Bool {
        Sodium.ensureInitialised()
        guard let chunk = makeChunk(Self.chunkByteCount) else { return false }
        // sodium_malloc fills new memory with a garbage pattern; slots start wiped.
        sodium_memzero(chunk, Self.chunkByteCount)
        let size = Self.slotSizes[sizeClass]
        let slots = Self.chunkByteCount / size
        state.free[sizeClass].reserveCapacity(state.free[sizeClass].count + slots)
        // Handed out from the end: the chunk's first slot goes first.
        for index in stride(from: slots - 1, through: 0, by: -1) {
            state.free[sizeClass].append(Slot(pointer: chunk + index * size))
        }
        state.chunks += 1
        return true
    }
}

/// Where one secret's bytes live, and how they are given back: a slot of the shared arena
/// for small secrets, a `sodium_malloc` region of their own for large ones, and — only when
/// the system can give neither (out of memory or of mappings) — ordinary memory, locked if
/// possible and wiped on release, so that a shortage degrades protection instead of
/// stopping the process.
struct SecureAllocation: @unchecked Sendable {
    enum Kind: Sendable { case slot, region, heap }

    let pointer: UnsafeMutableRawPointer
    /// The bytes asked for.
    let count: Int
    let kind: Kind

    /// Heap allocations keep the alignment the arena gives (64 bytes for hash states).
    private static let heapAlignment = 64

    static func allocate(_ count: Int, arena: SecretArena = .shared) -> SecureAllocation {
        Sodium.ensureInitialised()
        if SecretArena.sizeClass(for: count) != nil {
            if let slot = arena.allocate(count) { return SecureAllocation(pointer: slot, count: count, kind: .slot) }
        } else if let region = sodium_malloc(count) {
            return SecureAllocation(pointer: region, count: count, kind: .region)
        }
        let bytes = max(count, 1)
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: heapAlignment)
        _ = sodium_mlock(pointer, bytes)
        return SecureAllocation(pointer: pointer, count: count, kind: .heap)
    }

    /// Read-only protection for a region of its own (a safety net; slots share their pages).
    func protectReadOnly() {
        guard kind == .region else { return }
        _ = sodium_mprotect_readonly(pointer)
    }

    /// Wipes and gives the memory back.
    func release(arena: SecretArena = .shared) {
        switch kind {
        case .slot:
            arena.release(pointer, count: count)
        case .region:
            // sodium_free makes the pages writable again, checks the canary, wipes and unmaps.
            sodium_free(pointer)
        case .heap:
            let bytes = max(count, 1)
            sodium_memzero(pointer, bytes)
            _ = sodium_munlock(pointer, bytes)
            pointer.deallocate()
        }
    }
}

/// Guarded memory as the relay sees it: whether it can take one more connection's secrets.
public enum SecureMemory {
    /// Makes sure the shared arena has free slots in hand, growing it if needed; false when
    /// the system could not give it more guarded memory. Refuse new work then: secrets made
    /// meanwhile fall back to ordinary wiped memory rather than stop the process.
    public static func reserveHeadroom() -> Bool {
        SecretArena.shared.reserve()
    }

    /// Chunks of the shared arena, and the secrets in it now (for statistics and tests).
    public static var arenaUsage: (chunks: Int, secrets: Int) {
        let usage = SecretArena.shared.usage
        return (usage.chunks, usage.slotsInUse)
    }
}
