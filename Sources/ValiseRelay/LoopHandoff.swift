import NIOConcurrencyHelpers
import NIOCore
import ValiseStore

/// Hands work to event loops, gathering what the group-commit writer's completions hand on
/// during one commit into one task per event loop.
///
/// Profiled under load, a task per message (an `Accepted` to its sender, a delivery to its
/// recipient) cost the writer thread, which bounds the relay's throughput, an allocation, a
/// lock and often a wake-up each. Outside a commit's completions (or called from another
/// thread while they run), work still reaches its loop: at once, or when the commit's
/// completions end, microseconds later. Order per loop is kept.
final class LoopHandoff: CompletionBatching, @unchecked Sendable {
    private struct Gathered {
        var batching = false
        var loops: [(loop: any EventLoop, work: [@Sendable () -> Void])] = []
    }

    private let gathered = NIOLockedValueBox(Gathered())

    func execute(on loop: any EventLoop, _ work: @escaping @Sendable () -> Void) {
        let deferred = gathered.withLockedValue { gathered -> Bool in
            guard gathered.batching else { return false }
            // A relay has a loop per core: a linear search is shorter than hashing.
            if let index = gathered.loops.firstIndex(where: { $0.loop === loop }) {
                gathered.loops[index].work.append(work)
            } else {
                gathered.loops.append((loop, [work]))
            }
            return true
        }
        if !deferred { loop.execute(work) }
    }

    func beginBatch() {
        gathered.withLockedValue { $0.batching = true }
    }

    func endBatch() {
        let loops = gathered.withLockedValue { gathered in
            gathered.batching = false
            defer { gathered.loops.removeAll(keepingCapacity: true) }
            return gathered.loops
        }
        for (loop, work) in loops {
            loop.execute { for item in work { item() } }
        }
    }
}
