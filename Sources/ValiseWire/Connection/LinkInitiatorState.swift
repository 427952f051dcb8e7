public import ValiseCrypto

/// The connecting relay's side of a relay link, as a pure state machine (docs/PROTOCOL.md,
/// "Relay links"): the channel-2 preamble, its own static key in clear, the
/// Noise_KKhfs handshake as initiator with the peer's key from the directory, then
/// application messages both ways. Instead of frame 2 the peer may send a cleartext notice
/// (busy, or its version) and close.
public struct LinkInitiatorState: Sendable {
    public typealias Action = LinkAction

    private enum State: Sendable {
        case idle(HandshakeState)
        case handshaking(HandshakeState)
        /// The peer's first byte began a notice: its bytes so far (fewer than 8).
        case readingNotice([UInt8])
        case established(NoiseSession)
        case closed
    }

    private var state: State
    private var decoder = FrameDecoder()
    private let localKey: AgreementPublicKey
    private let maximumMessageLength: Int
    public private(set) var handshakeHash: [UInt8]?

    public init(
        localStatic: AgreementPrivateKey, remoteStatic: AgreementPublicKey,
        maximumMessageLength: Int = ValiseTransport.defaultMaximumMessageLength
    ) {
        self.init(handshake: try! HandshakeState(
            protocol: ValiseTransport.relayLinkProtocol, role: .initiator, prologue: ValiseTransport.relayLinkPrologue,
            staticKey: localStatic, remoteStaticKey: remoteStatic), localKey: localStatic.publicKey, maximumMessageLength: maximumMessageLength)
    }

    /// Test hook: a handshake with fixed ephemeral keys, to replay a transcript.
    init(handshake: HandshakeState, localKey: AgreementPublicKey, maximumMessageLength: Int) {
        self.localKey = localKey
        self.maximumMessageLength = maximumMessageLength
        state = .idle(handshake)
    }

    public var isEstablished: Bool {
        if case .established = state { return true }
        return false
    }

    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Bytes held for an incomplete notice or frame (bounded by one frame).
    public var bufferedByteCount: Int {
        if case .readingNotice(let bytes) = state { return bytes.count }
        return decoder.bufferedByteCount
    }

    /// Frames completed so far; a frame timer restarts when this changes.
    public var completedFrameCount: Int { decoder.completedFrameCount }

    /// The preamble, this relay's static key and frame 1, in one write: KK needs the key
    /// before frame 1, and it costs no round trip.
    public mutating func start() -> [Action] {
        guard case .idle(var handshake) = state else { return [] }
        do {
            let first = try handshake.writeMessage(payload: [])
            // Frame 2 has one length (1152 bytes); nothing longer is read before it.
            decoder.maximumLength = ValiseTransport.relayLinkProtocol.messageLengths[1]
            state = .handshaking(handshake)
            return [.write(Preamble.relayLink.bytes + localKey.bytes + FrameDecoder.frame(first))]
        } catch {
            return close(.handshakeFailed(error.message))
        }
    }

    /// Bytes arrived from the peer.
    public mutating func receive(_ bytes: [UInt8]) -> [Action] {
        if case .closed = state { return [] }
        var bytes = bytes[...]
        // The peer's first byte says which: frame 2's length (0x04 0x80) or a notice's
        // magic (`V`). After the handshake every byte is framed.
        if case .handshaking = state, decoder.bufferedByteCount == 0, bytes.first == Preamble.magic[0] {
            state = .readingNotice([])
        }
        if case .readingNotice(var notice) = state {
            guard Preamble.fill(&notice, from: &bytes) else {
                state = .readingNotice(notice)
                return []
            }
            switch RelayNotice(parsing: notice) {
            case .busy?: return close(.busy)
            case .version(let version)?: return close(.otherVersion(peer: version, local: ValiseTransport.relayLinkVersion))
            case nil: return close(.handshakeFailed("the peer sent a notice this relay does not know"))
            }
        }
        decoder.append(bytes)
        var actions: [Action] = []
        while !isClosed {
            let frame: [UInt8]?
            do {
                frame = try decoder.nextFrame()
            } catch {
                if case .handshaking = state { return actions + close(.handshakeFailed(error.message)) }
                return actions + close(.protocolViolation(error.message))
            }
            guard let frame else { break }
            actions += handle(frame)
        }
        return actions
    }

    private mutating func handle(_ frame: [UInt8]) -> [Action] {
        switch state {
        case .handshaking(var handshake):
            let expected = ValiseTransport.relayLinkProtocol.messageLengths[1]
            guard frame.count == expected else { return close(.handshakeFailed("frame 2 of \(frame.count) bytes, not \(expected)")) }
            do {
                let payload = try handshake.readMessage(frame)
                guard payload.isEmpty else { return close(.handshakeFailed("a handshake payload that is not empty")) }
            } catch {
                // The peer did not prove it holds the key the directory names (or frame 2
                // was damaged).
                return close(.handshakeFailed(error.message))
            }
            decoder.maximumLength = FrameDecoder.maximumFrameLength
            let transport = handshake.split()!
            handshakeHash = transport.handshakeHash
            state = .established(NoiseSession(transport: transport, maximumMessageLength: maximumMessageLength))
            return [.established]
        case .established(var session):
            let action = session.linkOpen(frame)
            state = .established(session)
            return settle(action)
        case .idle:
            return close(.protocolViolation("the peer spoke first"))
        case .readingNotice, .closed:
            return []
        }
    }

    /// Sends an application message (a LinkRequest), chunked as on channel 1; ignored
    /// unless established.
    public mutating func send(_ message: [UInt8]) -> [Action] {
        guard case .established(var session) = state else { return [] }
        let action = session.linkSeal(message)
        state = .established(session)
        return settle(action)
    }

    /// Closes the link from this side (shutdown, a LinkError that ends the link).
    public mutating func close() -> [Action] { close(.closedLocally) }

    /// An action of the established phase; a close also ends this state.
    private mutating func settle(_ action: LinkAction?) -> [Action] {
        guard let action else { return [] }
        guard case .close(let reason) = action else { return [action] }
        return close(reason)
    }

    private mutating func close(_ reason: LinkCloseReason) -> [Action] {
        if case .closed = state { return [] }
        state = .closed
        return [.close(reason)]
    }
}
