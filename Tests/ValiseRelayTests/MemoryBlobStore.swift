import NIOConcurrencyHelpers
import ValiseCrypto
import ValiseStore

/// A small in-memory `BlobStore` for the relay-link tests, following the protocol's
/// documented behaviour (the SQLite and PostgreSQL stores pass the conformance suite).
final class MemoryBlobStore: BlobStore {
    struct Held {
        var declaration: BlobDeclaration
        var bytes: [UInt8] = []
        var complete = false
        var fetchesLeft: UInt32
        var forwards: [String: UInt32]
    }

    let held = NIOLockedValueBox<[BlobID: Held]>([:])
    /// Every completeBlobForward, in order.
    let completedForwards = NIOLockedValueBox<[(BlobID, String)]>([])
    var completedDestinations: [String] { completedForwards.withLockedValue { $0.map(\.1) } }

    func record(_ blob: Held) -> BlobRecord {
        BlobRecord(id: blob.declaration.id, size: blob.declaration.size, committed: UInt64(blob.bytes.count), complete: blob.complete,
                   expiresAt: blob.declaration.expiresAt, fetchesLeft: blob.fetchesLeft)
    }

    /// A complete blob of `bytes`, with forwards to other relays.
    @discardableResult
    func put(_ bytes: [UInt8], expiresAt: UInt64, fetches: UInt32 = 0, forwards: [String: UInt32] = [:]) -> BlobID {
        let id = BlobID(bytes: BLAKE2b.hash(bytes, outputByteCount: 32))!
        let declaration = BlobDeclaration(id: id, size: UInt64(bytes.count), expiresAt: expiresAt, fetches: fetches, forwards: forwards)
        held.withLockedValue { $0[id] = Held(declaration: declaration, bytes: bytes, complete: true, fetchesLeft: fetches, forwards: forwards) }
        return id
    }

    func beginBlob(_ declaration: BlobDeclaration, maximumTotalBytes: UInt64, now: UInt64) throws(StoreError) -> BlobRecord {
        let result: Result<BlobRecord, StoreError> = held.withLockedValue { held in
            if let blob = held[declaration.id] {
                guard blob.declaration.size == declaration.size else { return .failure(StoreError(.failure, "held with another size")) }
                return .success(record(blob))
            }
            guard held.values.reduce(0, { $0 + $1.declaration.size }) + declaration.size <= maximumTotalBytes else {
                return .failure(StoreError(.limitReached, "the blobs' quota is full"))
            }
            let blob = Held(declaration: declaration, fetchesLeft: declaration.fetches, forwards: declaration.forwards)
            held[declaration.id] = blob
            return .success(record(blob))
        }
        return try result.get()
    }

    func appendBlob(id: BlobID, offset: UInt64, bytes: [UInt8], now: UInt64) throws(StoreError) -> BlobRecord {
        let result: Result<BlobRecord, StoreError> = held.withLockedValue { held in
            guard var blob = held[id], blob.declaration.expiresAt > now else { return .failure(StoreError(.failure, "no such blob")) }
            let committed = UInt64(blob.bytes.count)
            guard offset <= committed, offset + UInt64(bytes.count) <= blob.declaration.size else {
                return .failure(StoreError(.failure, "a gap, or past the size"))
            }
            blob.bytes += bytes.dropFirst(Int(committed - offset))
            if UInt64(blob.bytes.count) == blob.declaration.size, !blob.complete {
                guard BLAKE2b.hash(blob.bytes, outputByteCount: 32) == id.bytes else {
                    held[id] = nil
                    return .failure(StoreError(.corrupt, "the blob does not hash to its id"))
                }
                blob.complete = true
            }
            held[id] = blob
            return .success(record(blob))
        }
        return try result.get()
    }

    func blob(id: BlobID, now: UInt64) throws(StoreError) -> BlobRecord? {
        held.withLockedValue { held in held[id].flatMap { $0.complete && $0.declaration.expiresAt > now ? record($0) : nil } }
    }

    func readBlob(id: BlobID, offset: UInt64, length: Int, now: UInt64) throws(StoreError) -> [UInt8]? {
        held.withLockedValue { held in
            guard let blob = held[id], blob.complete, blob.declaration.expiresAt > now, offset <= UInt64(blob.bytes.count) else { return nil }
            return Array(blob.bytes[Int(offset)..<min(blob.bytes.count, Int(offset) + length)])
        }
    }

    func blobFetched(id: BlobID, now: UInt64) throws(StoreError) -> Bool {
        held.withLockedValue { held in
            guard var blob = held[id], blob.fetchesLeft > 0 else { return false }
            blob.fetchesLeft -= 1
            if blob.fetchesLeft == 0, blob.forwards.isEmpty {
                held[id] = nil
                return true
            }
            held[id] = blob
            return false
        }
    }

    func nextBlobForwards(destination: String, excluding: Set<BlobID>, limit: Int, now: UInt64) throws(StoreError) -> [BlobForward] {
        held.withLockedValue { held in
            held.values.filter { $0.complete && $0.declaration.expiresAt > now && $0.forwards[destination] != nil && !excluding.contains($0.declaration.id) }
                .prefix(limit)
                .map { BlobForward(id: $0.declaration.id, destination: destination, size: $0.declaration.size,
                                   expiresAt: $0.declaration.expiresAt, fetches: $0.forwards[destination]!) }
        }
    }

    func completeBlobForward(id: BlobID, destination: String, now: UInt64) throws(StoreError) {
        completedForwards.withLockedValue { $0.append((id, destination)) }
        held.withLockedValue { held in
            guard var blob = held[id] else { return }
            blob.forwards[destination] = nil
            held[id] = blob.forwards.isEmpty && blob.fetchesLeft == 0 ? nil : blob
        }
    }

    func expireBlobs(now: UInt64) throws(StoreError) -> Int {
        held.withLockedValue { held in
            let expired = held.filter { $0.value.declaration.expiresAt <= now }.map(\.key)
            for id in expired { held[id] = nil }
            return expired.count
        }
    }

    func blobStatistics(now: UInt64) throws(StoreError) -> BlobStatistics {
        held.withLockedValue { held in
            BlobStatistics(count: held.count, bytes: held.values.reduce(0) { $0 + $1.declaration.size },
                           forwardsWaiting: held.values.reduce(0) { $0 + $1.forwards.count })
        }
    }
}
