import Testing
@testable import ValiseRelay

@Suite("Fair queue (directory publishes per key)")
struct FairQueueTests {
    @Test("a key with a hundred items queued delays another key's first item by one")
    func oneKeyCannotHoldBackAnother() {
        var queue = FairQueue<String, Int>()
        for item in 0..<100 { queue.enqueue(item, for: "flood") }
        #expect(queue.dequeue()?.item == 0)
        queue.enqueue(1000, for: "revocation")
        // The flood's next item is already first in turn; the revocation comes right after.
        #expect(queue.dequeue()?.key == "flood")
        let next = queue.dequeue()
        #expect(next?.key == "revocation" && next?.item == 1000)
        #expect(queue.count == 98 && queue.count(for: "flood") == 98 && queue.count(for: "revocation") == 0)
    }

    @Test("keys take turns, each key's items in order; empty when drained")
    func turns() {
        var queue = FairQueue<String, Int>()
        for item in 0..<3 { queue.enqueue(item, for: "a") }
        for item in 10..<12 { queue.enqueue(item, for: "b") }
        queue.enqueue(20, for: "c")
        var served: [String] = []
        while let (key, item) = queue.dequeue() { served.append("\(key)\(item)") }
        #expect(served == ["a0", "b10", "c20", "a1", "b11", "a2"])
        #expect(queue.isEmpty && queue.dequeue() == nil)
    }
}
