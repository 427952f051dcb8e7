import NIOConcurrencyHelpers
import NIOEmbedded
import Testing
@testable import ValiseRelay

@Suite("Loop handoff")
struct LoopHandoffTests {
    @Test("outside a batch work goes to its loop at once; inside, it waits for the batch's end, one task per loop, in order")
    func gathering() {
        let first = EmbeddedEventLoop()
        let second = EmbeddedEventLoop()
        let handoff = LoopHandoff()
        let ran = NIOLockedValueBox<[String]>([])
        func record(_ name: String) -> @Sendable () -> Void { { ran.withLockedValue { $0.append(name) } } }

        handoff.execute(on: first, record("direct"))
        first.run()
        #expect(ran.withLockedValue { $0 } == ["direct"])

        handoff.beginBatch()
        handoff.execute(on: first, record("a1"))
        handoff.execute(on: second, record("b1"))
        handoff.execute(on: first, record("a2"))
        first.run()
        second.run()
        #expect(ran.withLockedValue { $0 } == ["direct"], "nothing reaches a loop before the batch ends")
        handoff.endBatch()
        first.run()
        #expect(ran.withLockedValue { $0 } == ["direct", "a1", "a2"])
        second.run()
        #expect(ran.withLockedValue { $0 } == ["direct", "a1", "a2", "b1"])

        // After the batch, work goes straight to its loop again.
        handoff.execute(on: second, record("after"))
        second.run()
        #expect(ran.withLockedValue { $0 }.last == "after")
    }
}
