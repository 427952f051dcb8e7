/// Splits a byte stream into frames: a 2-byte big-endian length, then that many bytes (one
/// Noise message). A pull parser in the style of swift-nio-ssh's packet parser: `append`
/// whatever arrived, then take `nextFrame()` until it returns nil. Never holds more than one
/// frame's worth of unread bytes beyond what was appended.
public struct FrameDecoder: Sendable {
    /// Noise's limit: a frame's length field cannot say more.
    public static let maximumFrameLength = 65_535
    /// Storage kept for the next read once every byte is consumed. Larger storage (left by
    /// a large frame) is given back, so that a connection that once carried a large message
    /// does not hold its size while it sits idle among thousands of others.
    static let retainedCapacity = 1024

    private var buffer: [UInt8] = []
    private var start = 0

    /// The longest frame accepted now; a longer length field throws as soon as it is read,
    /// before its body is waited for. A connection lowers it to its handshake messages'
    /// sizes while it handshakes, so that nobody unauthenticated makes it buffer 64 KiB.
    public var maximumLength = FrameDecoder.maximumFrameLength

    public init() {}

    /// Frames returned so far: a change tells a caller that a new frame has begun.
    public private(set) var completedFrameCount = 0

    /// Bytes received and not yet returned as a frame.
    public var bufferedByteCount: Int { buffer.count - start }
    /// Bytes held in storage, consumed ones included (compaction keeps this near one frame).
    var storedByteCount: Int { buffer.count }
    /// Bytes of storage allocated, used or not.
    var storedCapacity: Int { buffer.capacity }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        // Drop consumed bytes before growing, so the buffer stays about one frame long.
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame's contents, or nil if more bytes are needed.
    public mutating func nextFrame() throws(FramingError) -> [UInt8]? {
        guard bufferedByteCount >= 2 else { return nil }
        let length = Int(buffer[start]) << 8 | Int(buffer[start + 1])
        guard length > 0 else { throw .emptyFrame }
        guard length <= maximumLength else { throw .frameTooLarge(limit: maximumLength) }
        guard bufferedByteCount >= 2 + length else { return nil }
        let frame = Array(buffer[(start + 2)..<(start + 2 + length)])
        start += 2 + length
        completedFrameCount &+= 1
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
            start = 0
        }
        return frame
    }

    /// Prefixes `message` (at most 65535 bytes, at least 1) with its length.
    public static func frame(_ message: [UInt8]) -> [UInt8] {
        precondition((1...maximumFrameLength).contains(message.count), "a frame holds 1 to 65535 bytes")
        return [UInt8(message.count >> 8), UInt8(message.count & 0xff)] + message
    }
}
