public import ValiseCrypto

/// The client's side of one connection, as a pure state machine: the cleartext preamble,
/// the Noise_XKhfs handshake as initiator, with the relay's static key pinned from the
/// organisation bundle, then application messages both ways. Instead of its handshake
/// reply the relay may send a cleartext notice (busy, or its version) and close.
public struct ClientConnectionState: Sendable {
    public enum Action: Equatable, Sendable {
        case write([UInt8])
        /// The handshake is complete: the relay proved it holds the pinned key.
        case established
        case deliver([UInt8])
        case close(Reason)
    }

    /// Why the connection ends. The first two come from the relay's unauthenticated notice,
    /// so they are reported as what the relay said, never as proof of anything.
    public enum Reason: Equatable, Sendable, CustomStringConvertible {
        /// The relay said BUSY: at its connection limits.
        case busy
        /// The relay said VERSION: it speaks `relay` (0: it does not serve this channel);
        /// this client speaks `client`.
        case otherVersion(relay: UInt8, client: UInt8)
        /// The relay's handshake reply did not prove the pinned key (or was damaged).
        case handshakeFailed(String)
        case protocolViolation(String)
        /// A message could not be sent.
        case failed(String)

        public var description: String {
            switch self {
            case .busy: "the relay is busy (at its connection limits)"
            case .otherVersion(let relay, let client): "the relay speaks protocol version \(relay); this client speaks version \(client)"
            case .handshakeFailed(let why): "the relay's handshake failed: \(why); it may not be the relay the organisation bundle names"
            case .protocolViolation(let why): "protocol violation: \(why)"
            case .failed(let why): why
            }
        }
    }

    private enum State: Sendable {
        case idle(HandshakeState)
        case handshaking(HandshakeState)
        /// The relay's first byte began a notice: its bytes so far (fewer than 8).
        case readingNotice([UInt8])
        case established(NoiseSession)
        case closed
    }

    private var state: State
    private var decoder = FrameDecoder()
    private let maximumMessageLength: Int
    private let preamble: Preamble

    /// `preamble` and `noiseProtocol` are this build's unless a test (or the benchmark's
    /// classical comparison) asks for others.
    public init(
        clientKey: AgreementPrivateKey, relayKey: AgreementPublicKey, preamble: Preamble = .client,
        protocol noiseProtocol: NoiseProtocol = ValiseTransport.clientProtocol, maximumMessageLength: Int
    ) {
        self.maximumMessageLength = maximumMessageLength
        self.preamble = preamble
        state = .idle(try! HandshakeState(
            protocol: noiseProtocol, role: .initiator, prologue: preamble.prologue, staticKey: clientKey, remoteStaticKey: relayKey))
    }

    public var isEstablished: Bool {
        if case .established = state { return true }
        return false
    }

    /// The preamble and the first handshake message, in one write: no round trip.
    public mutating func start() -> [Action] {
        guard case .idle(var handshake) = state else { return [] }
        do {
            let first = try handshake.writeMessage(payload: [])
            // The relay's handshake reply is one frame of a known length (1152 bytes).
            decoder.maximumLength = handshake.noiseProtocol.messageLengths[1]
            state = .handshaking(handshake)
            return [.write(preamble.bytes + FrameDecoder.frame(first))]
        } catch {
            return close(.handshakeFailed(error.message))
        }
    }

    public mutating func receive(_ bytes: [UInt8]) -> [Action] {
        if case .closed = state { return [] }
        var bytes = bytes[...]
        // The relay's first byte says which: a handshake frame's length (under 0x5600) or a
        // notice's magic (`V`). After the handshake every byte is framed.
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
            case .version(let version)?: return close(.otherVersion(relay: version, client: preamble.version))
            case nil: return close(.protocolViolation("the relay sent a notice this client does not know"))
            }
        }
        decoder.append(bytes)
        var actions: [Action] = []
        while true {
            if case .closed = state { break }
            let frame: [UInt8]?
            do {
                frame = try decoder.nextFrame()
            } catch {
                // A reply that cannot be frame 2 proves nothing about the pinned key.
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
            do {
                let payload = try handshake.readMessage(frame)
                guard payload.isEmpty else { return close(.protocolViolation("the relay's handshake payload is not empty")) }
                let last = try handshake.writeMessage(payload: [])
                decoder.maximumLength = FrameDecoder.maximumFrameLength
                let session = NoiseSession(transport: handshake.split()!, maximumMessageLength: maximumMessageLength)
                state = .established(session)
                return [.write(FrameDecoder.frame(last)), .established]
            } catch {
                // The relay did not prove it holds the pinned key (or the reply was damaged).
                return close(.handshakeFailed(error.message))
            }
        case .established(var session):
            do {
                let message = try session.open(frame)
                state = .established(session)
                return message.map { [.deliver($0)] } ?? []
            } catch {
                return close(.protocolViolation(error.description))
            }
        case .idle:
            return close(.protocolViolation("the relay spoke first"))
        case .readingNotice, .closed:
            return []
        }
    }

    public mutating func send(_ message: [UInt8]) -> [Action] {
        guard case .established(var session) = state else { return [] }
        do {
            let bytes = try session.seal(message)
            state = .established(session)
            return [.write(bytes)]
        } catch {
            return close(.failed("cannot send: \(error.message)"))
        }
    }

    private mutating func close(_ reason: Reason) -> [Action] {
        if case .closed = state { return [] }
        state = .closed
        return [.close(reason)]
    }
}
