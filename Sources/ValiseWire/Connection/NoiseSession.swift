/// An established Noise channel carrying application messages: each message is split into
/// fragments (MessageFragments), each fragment encrypted as one transport message and
/// framed. Each direction rekeys itself every `rekeyInterval` messages, at the same point
/// on both sides, so no signal is needed.
public struct NoiseSession: Sendable {
    /// 2^20 transport messages per direction between rekeys.
    public static let rekeyInterval: UInt64 = 1 << 20

    private var transport: NoiseTransport
    private var reassembler: MessageReassembler

    public init(transport: NoiseTransport, maximumMessageLength: Int) {
        self.transport = transport
        self.reassembler = MessageReassembler(maximumMessageLength: maximumMessageLength)
    }

    public var handshakeHash: [UInt8] { transport.handshakeHash }

    /// The framed, encrypted bytes that carry `message`.
    public mutating func seal(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        var out: [UInt8] = []
        for fragment in MessageFragments.split(message) {
            out += FrameDecoder.frame(try transport.encrypt(fragment))
            if transport.send.nonce % Self.rekeyInterval == 0 { transport.send.rekey() }
        }
        return out
    }

    /// Decrypts one frame; returns a message when its last fragment arrives.
    public mutating func open(_ frame: [UInt8]) throws(SessionError) -> [UInt8]? {
        let plaintext: [UInt8]
        do {
            plaintext = try transport.decrypt(frame)
        } catch {
            throw .noise(error)
        }
        if transport.receive.nonce % Self.rekeyInterval == 0 { transport.receive.rekey() }
        do {
            return try reassembler.receive(plaintext)
        } catch {
            throw .framing(error)
        }
    }
}

/// What ends a connection at the wire level.
public enum SessionError: Error, Equatable, Sendable, CustomStringConvertible {
    case noise(NoiseError)
    case framing(FramingError)

    public var description: String {
        switch self {
        case .noise(let error): error.message
        case .framing(let error): error.message
        }
    }

    public var code: String {
        switch self {
        case .noise(let error): "noise-\(error.code)"
        case .framing(let error): error.code
        }
    }
}
