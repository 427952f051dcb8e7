import NIOCore

/// Work queued per key and served in turn: each key with work waiting gets one item before
/// any key gets a second, so one key with a hundred items delays another key's first by at
/// most one item. Pure.
struct FairQueue<Key: Hashable, Item> {
    private var items: [Key: CircularBuffer<Item>] = [:]
    /// Keys with work waiting, in the order they are served.
    private var turns = CircularBuffer<Key>()
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func enqueue(_ item: Item, for key: Key) {
        if items[key] == nil {
            items[key] = CircularBuffer()
            turns.append(key)
        }
        items[key]!.append(item)
        count += 1
    }

    /// The next key's oldest item; that key then waits behind every other key with work.
    mutating func dequeue() -> (key: Key, item: Item)? {
        guard let key = turns.popFirst(), var queue = items.removeValue(forKey: key) else { return nil }
        let item = queue.removeFirst()
        if !queue.isEmpty {
            items[key] = queue
            turns.append(key)
        }
        count -= 1
        return (key, item)
    }

    /// Items waiting for `key`.
    func count(for key: Key) -> Int { items[key]?.count ?? 0 }
}

extension FairQueue: Sendable where Key: Sendable, Item: Sendable {}
