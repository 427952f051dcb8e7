import CSodium
import Foundation
import Testing
@testable import ValiseCrypto

@Suite("SecretArena")
struct SecretArenaTests {
    @Test("a released slot is wiped before it is handed out again")
    func wipedOnRelease() throws {
        let arena = SecretArena()
        let slot = try #require(arena.allocate(32))
        slot.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 32)
        arena.release(slot, count: 32)
        let again = try #require(arena.allocate(32))
        #expect(again == slot)
        #expect(Array(UnsafeRawBufferPointer(start: again, count: 32)) == [UInt8](repeating: 0, count: 32))
        arena.release(again, count: 32)
    }

    @Test("sizes map to the smallest class that holds them; larger secrets are not slots")
    func sizeClasses() {
        #expect(SecretArena.sizeClass(for: 0) == 0)
        #expect(SecretArena.sizeClass(for: 32) == 0)
        #expect(SecretArena.sizeClass(for: 33) == 1)
        #expect(SecretArena.sizeClass(for: 512) == SecretArena.slotSizes.count - 1)
        #expect(SecretArena.sizeClass(for: 513) == nil)
        #expect(SecretArena().allocate(513) == nil)
    }

    @Test("slots of 64 bytes and more are 64-byte aligned", arguments: [64, 128, 256, 512])
    func alignment(size: Int) throws {
        let arena = SecretArena()
        var slots: [UnsafeMutableRawPointer] = []
        for _ in 0..<300 { slots.append(try #require(arena.allocate(size))) }
        #expect(slots.allSatisfy { Int(bitPattern: $0) % 64 == 0 })
        for slot in slots { arena.release(slot, count: size) }
    }

    @Test("one chunk holds many secrets; usage counts what is held")
    func chunks() throws {
        let arena = SecretArena()
        let perChunk = SecretArena.chunkByteCount / 32
        var slots: [UnsafeMutableRawPointer] = []
        for _ in 0..<perChunk { slots.append(try #require(arena.allocate(32))) }
        #expect(arena.usage.chunks == 1)
        #expect(arena.usage.slotsInUse == perChunk)
        #expect(Set(slots).count == perChunk)
        slots.append(try #require(arena.allocate(32)))
        #expect(arena.usage.chunks == 2)
        for slot in slots { arena.release(slot, count: 32) }
        #expect(arena.usage.slotsInUse == 0)
    }

    @Test("an arena that cannot grow says so, and secrets fall back to wiped ordinary memory")
    func cannotGrow() {
        let arena = SecretArena(makeChunk: { _ in nil })
        #expect(arena.allocate(32) == nil)
        #expect(!arena.reserve())
        let allocation = SecureAllocation.allocate(32, arena: arena)
        #expect(allocation.kind == .heap)
        #expect(Int(bitPattern: allocation.pointer) % 64 == 0)
        allocation.pointer.initializeMemory(as: UInt8.self, repeating: 7, count: 32)
        allocation.release(arena: arena)
    }

    @Test("reserve keeps free slots in every class")
    func reserve() {
        let arena = SecretArena()
        #expect(arena.reserve(slots: 10))
        #expect(arena.usage.chunks == SecretArena.slotSizes.count)
        #expect(arena.reserve(slots: 10))
        #expect(arena.usage.chunks == SecretArena.slotSizes.count)
    }

    @Test("secrets of every size keep their contents", arguments: [0, 1, 31, 32, 33, 64, 100, 384, 512, 513, 5000])
    func secretBytesSizes(count: Int) {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let secret = SecretBytes(copying: bytes)
        #expect(secret.count == count)
        #expect(secret.withUnsafeBytes { Array($0) } == bytes)
    }

    @Test("scratch memory is 64-byte aligned and zeroed", arguments: [1, 128, 208, 384, 600])
    func scratch(count: Int) {
        let scratch = SecureScratch(count: count)
        #expect(Int(bitPattern: scratch.pointer) % 64 == 0)
        #expect(scratch.count % 64 == 0 && scratch.count >= count)
        #expect(Array(UnsafeRawBufferPointer(start: scratch.pointer, count: scratch.count)).allSatisfy { $0 == 0 })
    }

    @Test("threads allocate and release concurrently")
    func concurrency() async {
        let arena = SecretArena()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for round in 0..<2_000 {
                        let size = SecretArena.slotSizes[(task + round) % SecretArena.slotSizes.count]
                        guard let slot = arena.allocate(size) else { continue }
                        slot.storeBytes(of: UInt8(task), as: UInt8.self)
                        arena.release(slot, count: size)
                    }
                }
            }
        }
        #expect(arena.usage.slotsInUse == 0)
    }

    #if os(Linux)
    /// The failure this arena exists for: one sodium_malloc region per secret took four
    /// mappings, so about 16,000 live keys reached vm.max_map_count (65,530), and the next
    /// allocation stopped the process.
    @Test("tens of thousands of live keys take a handful of mappings")
    func mappings() throws {
        let before = try Self.mappingCount()
        let keys = (0..<20_000).map { _ in SymmetricKey() }
        let after = try Self.mappingCount()
        #expect(keys.count == 20_000)
        #expect(after - before < 200, "mappings grew by \(after - before) for 20,000 keys")
    }

    private static func mappingCount() throws -> Int {
        try String(contentsOfFile: "/proc/self/maps", encoding: .utf8).split(separator: "\n").count
    }
    #endif
}
