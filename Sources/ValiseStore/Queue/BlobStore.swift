import ValiseCrypto

/// A blob's name: BLAKE2b-256 of its bytes (an attachment's ciphertext), which every relay
/// checks once the last byte is in (docs/PROTOCOL.md, "Blobs").
public struct BlobID: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    /// The first 8 bytes in hex: enough to tell blobs apart in a log or status line.
    public var description: String { Hex.encode(bytes.prefix(8)) }
}

/// What an upload (or a relay link's offer) declares about a blob before its first byte:
/// its size, when it expires, how many recipient devices at this relay will fetch it, and
/// how many behind each other relay it must be forwarded to. Never who uploaded it.
public struct BlobDeclaration: Sendable, Equatable {
    public let id: BlobID
    /// The blob's length in bytes, at least 1.
    public let size: UInt64
    /// When the relay deletes it, fetched or not (seconds since 1970, the relay's clock).
    public let expiresAt: UInt64
    /// Completed fetches at this relay after which it is deleted (0: none here).
    public let fetches: UInt32
    /// Destination relay name → fetches declared there; each gets the blob once, by custody
    /// transfer, once it is complete here.
    public let forwards: [String: UInt32]

    public init(id: BlobID, size: UInt64, expiresAt: UInt64, fetches: UInt32, forwards: [String: UInt32] = [:]) {
        self.id = id
        self.size = size
        self.expiresAt = expiresAt
        self.fetches = fetches
        self.forwards = forwards
    }
}

/// What a store holds of one blob.
public struct BlobRecord: Sendable, Equatable {
    public let id: BlobID
    public let size: UInt64
    /// Bytes durably stored from the start (all of them once complete).
    public let committed: UInt64
    /// Every byte is in and its hash matched the id: it may be fetched and forwarded.
    public let complete: Bool
    public let expiresAt: UInt64
    public let fetchesLeft: UInt32

    public init(id: BlobID, size: UInt64, committed: UInt64, complete: Bool, expiresAt: UInt64, fetchesLeft: UInt32) {
        self.id = id
        self.size = size
        self.committed = committed
        self.complete = complete
        self.expiresAt = expiresAt
        self.fetchesLeft = fetchesLeft
    }
}

/// A complete blob waiting to be sent to another relay.
public struct BlobForward: Sendable, Equatable {
    public let id: BlobID
    public let destination: String
    public let size: UInt64
    public let expiresAt: UInt64
    /// Fetches declared for the destination's recipients.
    public let fetches: UInt32

    public init(id: BlobID, destination: String, size: UInt64, expiresAt: UInt64, fetches: UInt32) {
        self.id = id
        self.destination = destination
        self.size = size
        self.expiresAt = expiresAt
        self.fetches = fetches
    }
}

/// How much the blobs take.
public struct BlobStatistics: Sendable, Equatable {
    public var count: Int
    /// Declared sizes of every blob held, complete or not (what the quota counts).
    public var bytes: UInt64
    public var forwardsWaiting: Int

    public init(count: Int = 0, bytes: UInt64 = 0, forwardsWaiting: Int = 0) {
        self.count = count
        self.bytes = bytes
        self.forwardsWaiting = forwardsWaiting
    }
}

/// Where a relay keeps attachment blobs: opaque bytes named by their hash, uploaded in
/// parts (resumable), fetched by range, deleted once every declared fetch and forward is
/// done or at expiry. A store never records who uploaded a blob, nor which envelope refers
/// to it. Kept apart from envelopes, so that blobs never take the room text messages need.
///
/// Every method is synchronous, may block on disk, and is one durable transaction.
public protocol BlobStore: Sendable {
    /// Creates an empty blob as declared, or returns the one held under this id (an upload
    /// resumed, or repeated after it completed: its fetches and forwards are NOT declared
    /// again). Throws `.limitReached` when a new blob would take the blobs' total over
    /// `maximumTotalBytes`, and `.failure` when the id is held with another size.
    func beginBlob(_ declaration: BlobDeclaration, maximumTotalBytes: UInt64, now: UInt64) throws(StoreError) -> BlobRecord

    /// Appends `bytes` at `offset`, which must be the committed length (bytes already
    /// committed are ignored: a part sent twice); durable when it returns. When the last
    /// byte is in, checks the whole blob's BLAKE2b-256 against its id: a match makes it
    /// complete (and queues its forwards); a mismatch deletes it and throws `.corrupt`.
    /// Throws `.failure` for an unknown or expired blob, a gap, or bytes past the size.
    func appendBlob(id: BlobID, offset: UInt64, bytes: [UInt8], now: UInt64) throws(StoreError) -> BlobRecord

    /// A complete, unexpired blob's record, or nil.
    func blob(id: BlobID, now: UInt64) throws(StoreError) -> BlobRecord?

    /// Up to `length` bytes of a complete, unexpired blob from `offset` (fewer at its end);
    /// nil when it is not held (or not complete yet).
    func readBlob(id: BlobID, offset: UInt64, length: Int, now: UInt64) throws(StoreError) -> [UInt8]?

    /// One declared fetch at this relay completed: counts it down, and deletes the blob
    /// when no fetch is left here and no forward waits. Returns whether it was deleted.
    func blobFetched(id: BlobID, now: UInt64) throws(StoreError) -> Bool

    /// Complete blobs to send to `destination`, oldest first, leaving out `excluding`.
    func nextBlobForwards(destination: String, excluding: Set<BlobID>, limit: Int, now: UInt64) throws(StoreError) -> [BlobForward]

    /// The destination committed the whole blob (custody passed), or refused it for good:
    /// the forward is done either way; the blob is deleted if nothing else waits for it.
    func completeBlobForward(id: BlobID, destination: String, now: UInt64) throws(StoreError)

    /// Deletes expired blobs, complete or not, with their forwards. Returns how many.
    func expireBlobs(now: UInt64) throws(StoreError) -> Int

    func blobStatistics(now: UInt64) throws(StoreError) -> BlobStatistics
}
