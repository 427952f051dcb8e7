/// Application messages over Noise transport messages. Each transport plaintext is one
/// header byte and a chunk of the message: `0x00` for the last (or only) chunk, `0x01` when
/// more follow. A message longer than one Noise message (65535 − 16 tag − 1 header bytes)
/// is split; the receiver reassembles it up to a bound.
public enum MessageFragments {
    public static let lastChunk: UInt8 = 0x00
    public static let moreChunks: UInt8 = 0x01
    /// The most message bytes one transport message carries.
    public static let maximumChunk = 65_535 - 16 - 1

    /// The transport plaintexts for `message`.
    public static func split(_ message: [UInt8]) -> [[UInt8]] {
        guard message.count > maximumChunk else { return [[lastChunk] + message] }
        var chunks: [[UInt8]] = []
        var offset = 0
        while offset < message.count {
            let end = min(offset + maximumChunk, message.count)
            chunks.append([end == message.count ? lastChunk : moreChunks] + message[offset..<end])
            offset = end
        }
        return chunks
    }
}

/// Reassembles fragmented messages, refusing any message longer than `maximumMessageLength`
/// as soon as a fragment would exceed it.
public struct MessageReassembler: Sendable {
    public let maximumMessageLength: Int
    private var partial: [UInt8] = []
    /// Whether a message is partly received.
    public private(set) var isPartial = false

    public init(maximumMessageLength: Int) {
        self.maximumMessageLength = maximumMessageLength
    }

    /// Takes one transport plaintext; returns a whole message when its last chunk arrives.
    public mutating func receive(_ plaintext: [UInt8]) throws(FramingError) -> [UInt8]? {
        guard let header = plaintext.first else { throw .emptyFragment }
        guard header == MessageFragments.lastChunk || header == MessageFragments.moreChunks else {
            throw .badFragmentHeader
        }
        guard partial.count + plaintext.count - 1 <= maximumMessageLength else {
            throw .messageTooLarge(limit: maximumMessageLength)
        }
        partial.append(contentsOf: plaintext.dropFirst())
        guard header == MessageFragments.lastChunk else {
            isPartial = true
            return nil
        }
        defer {
            partial = []
            isPartial = false
        }
        return partial
    }
}
