import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file of allocated blocks kept beside the store and given back when the disk is full.
///
/// Deleting from SQLite needs a little space (the write-ahead log grows before the pages it
/// frees can be reused), so on a full disk acknowledgements, expiry and purges would fail
/// and the queue could never drain. With the reserve, the store gives those blocks back
/// and the deletion goes through; new envelopes are refused until the reserve is whole
/// again, so they can never eat the room kept for deletions.
final class SpaceReserve: @unchecked Sendable {
    let path: String
    let bytes: Int
    private let lock = NSLock()
    private var held = false
    private var lastAttempt: UInt64 = 0

    /// `bytes == 0` turns the reserve off: it always counts as held and has nothing to give.
    init(path: String, bytes: Int) {
        self.path = path
        self.bytes = max(0, bytes)
        lock.lock()
        held = self.bytes == 0 || allocate()
        lock.unlock()
    }

    var isHeld: Bool {
        lock.lock()
        defer { lock.unlock() }
        return held
    }

    /// Whether the reserve is whole, allocating it again if it was given back (tried at
    /// most once a second, so a full disk costs no more than that). When the disk has no
    /// room for it, `reclaim` is asked to give the store's free pages back, and the
    /// allocation is tried once more.
    func ensure(reclaim: () -> Void) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if held { return true }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now &- lastAttempt >= 1_000_000_000 || lastAttempt == 0 else { return false }
        lastAttempt = now
        held = allocate()
        if !held {
            reclaim()
            held = allocate()
        }
        return held
    }

    /// Gives the blocks back to the file system. Returns false when there was nothing to give.
    func release() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard held, bytes > 0 else { return false }
        held = false
        lastAttempt = DispatchTime.now().uptimeNanoseconds
        unlink(path)
        return true
    }

    /// Allocates the whole file (real blocks, not a sparse file), or leaves none of it.
    private func allocate() -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return false }
        let result = posix_fallocate(descriptor, 0, off_t(bytes))
        close(descriptor)
        if result != 0 { unlink(path) }
        return result == 0
    }
}
