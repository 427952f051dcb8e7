public import ValiseCrypto

/// The accepting relay's side of a relay link, as a pure state machine (docs/PROTOCOL.md,
/// "Relay links"): the channel-2 preamble, the initiator's static key in clear, an
/// admission decision on that key, the Noise_KKhfs handshake as responder, then application
/// messages both ways.
///
/// Nothing is sent to a stranger: a preamble without the magic, a key that is not admitted,
/// or a frame 1 that does not decrypt (not made for this relay's key, or with a key other
/// than the one announced) closes the connection without a byte. A preamble for another
/// channel-2 version is answered with this relay's version.
///
/// A relay whose connections start in `RelayConnectionState` hands one over when that says
/// `.relayLink(remaining)`: create this state with `afterPreamble: true` and feed it
/// `remaining`.
public struct LinkResponderState: Sendable {
    public typealias Action = LinkAction

    private enum State: Sendable {
        /// The preamble's bytes so far (fewer than 8).
        case awaitingPreamble([UInt8])
        /// The initiator's static key's bytes so far (fewer than 32).
        case awaitingKey([UInt8])
        case handshaking(HandshakeState)
        case established(NoiseSession)
        case closed
    }

    /// Frame 1 of KKhfs, the only frame read before the handshake is done (1248 bytes).
    static let firstFrameLength = ValiseTransport.relayLinkProtocol.messageLengths[0]

    private var state: State
    private var decoder = FrameDecoder()
    private let localStatic: AgreementPrivateKey
    private let admit: @Sendable (AgreementPublicKey) -> Bool
    private let maximumMessageLength: Int
    /// The initiator's static key, once announced and admitted.
    public private(set) var peerKey: AgreementPublicKey?
    public private(set) var handshakeHash: [UInt8]?

    /// - `admit`: whether a relay with this Noise key may link (listed in the directory and
    ///   not removed); asked once, before any byte is sent.
    /// - `afterPreamble`: the caller has already read a valid channel-2 version-1 preamble.
    public init(
        localStatic: AgreementPrivateKey, maximumMessageLength: Int = ValiseTransport.defaultMaximumMessageLength,
        afterPreamble: Bool = false, admit: @escaping @Sendable (AgreementPublicKey) -> Bool
    ) {
        self.localStatic = localStatic
        self.admit = admit
        self.maximumMessageLength = maximumMessageLength
        state = afterPreamble ? .awaitingKey([]) : .awaitingPreamble([])
        // Until the handshake is done, no frame may be longer than frame 1.
        decoder.maximumLength = Self.firstFrameLength
    }

    public var isEstablished: Bool {
        if case .established = state { return true }
        return false
    }

    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Bytes held for an incomplete preamble, key or frame (bounded by one frame).
    public var bufferedByteCount: Int {
        switch state {
        case .awaitingPreamble(let bytes), .awaitingKey(let bytes): bytes.count
        default: decoder.bufferedByteCount
        }
    }

    /// Frames completed so far; a frame timer restarts when this changes.
    public var completedFrameCount: Int { decoder.completedFrameCount }

    /// Bytes arrived from the initiator.
    public mutating func receive(_ bytes: [UInt8]) -> [Action] {
        guard !isClosed else { return [] }
        var bytes = bytes[...]
        if case .awaitingPreamble(var preamble) = state {
            guard Preamble.fill(&preamble, from: &bytes) else {
                state = .awaitingPreamble(preamble)
                return []
            }
            if let refusal = check(preamble) { return refusal }
            state = .awaitingKey([])
        }
        if case .awaitingKey(var key) = state {
            let taken = bytes.prefix(AgreementPublicKey.byteCount - key.count)
            key += taken
            bytes = bytes.dropFirst(taken.count)
            guard key.count == AgreementPublicKey.byteCount else {
                state = .awaitingKey(key)
                return []
            }
            if let refusal = start(key) { return refusal }
        }
        decoder.append(bytes)
        var actions: [Action] = []
        while !isClosed {
            let frame: [UInt8]?
            do {
                frame = try decoder.nextFrame()
            } catch {
                // Before frame 1 has decrypted, a frame longer than it is a stranger's,
                // dropped as silently as one that does not decrypt.
                if case .handshaking = state { return actions + close(.unknownPeer) }
                return actions + close(.protocolViolation(error.message))
            }
            guard let frame else { break }
            actions += handle(frame)
        }
        return actions
    }

    /// A whole preamble: nil to go on, else the refusal (silent for a stranger, this
    /// relay's version for another Valise).
    private mutating func check(_ bytes: [UInt8]) -> [Action]? {
        guard let preamble = Preamble(parsing: bytes) else { return close(.notValise) }
        guard preamble != .relayLink else { return nil }
        let served: UInt8 = preamble.channel == Preamble.Channel.relayLink.rawValue ? ValiseTransport.relayLinkVersion : 0
        return [.write(RelayNotice.version(served).bytes)] + close(.otherVersion(peer: preamble.version, local: served))
    }

    /// The initiator's key is complete: admitted, the handshake starts; else the connection
    /// ends without a byte.
    private mutating func start(_ keyBytes: [UInt8]) -> [Action]? {
        guard let key = try? AgreementPublicKey(bytes: keyBytes), !key.isSmallOrder, admit(key) else { return close(.notAdmitted) }
        peerKey = key
        state = .handshaking(try! HandshakeState(
            protocol: ValiseTransport.relayLinkProtocol, role: .responder, prologue: ValiseTransport.relayLinkPrologue,
            staticKey: localStatic, remoteStaticKey: key))
        return nil
    }

    private mutating func handle(_ frame: [UInt8]) -> [Action] {
        switch state {
        case .handshaking(var handshake):
            // A frame 1 of another length was not made by a relay of this protocol.
            guard frame.count == Self.firstFrameLength else { return close(.unknownPeer) }
            do {
                let payload = try handshake.readMessage(frame)
                guard payload.isEmpty else { return close(.handshakeFailed("a handshake payload that is not empty")) }
            } catch {
                return close(.unknownPeer)
            }
            do {
                let reply = try handshake.writeMessage(payload: [])
                decoder.maximumLength = FrameDecoder.maximumFrameLength
                let transport = handshake.split()!
                handshakeHash = transport.handshakeHash
                state = .established(NoiseSession(transport: transport, maximumMessageLength: maximumMessageLength))
                return [.write(FrameDecoder.frame(reply)), .established]
            } catch {
                return close(.handshakeFailed(error.message))
            }
        case .established(var session):
            let action = session.linkOpen(frame)
            state = .established(session)
            return settle(action)
        case .awaitingPreamble, .awaitingKey, .closed:
            return []
        }
    }

    /// Sends an application message (a LinkReply), chunked as on channel 1; ignored unless
    /// established.
    public mutating func send(_ message: [UInt8]) -> [Action] {
        guard case .established(var session) = state else { return [] }
        let action = session.linkSeal(message)
        state = .established(session)
        return settle(action)
    }

    /// Sends a last message (a LinkError: NOT_A_RELAY, SHUTTING_DOWN), then closes.
    public mutating func sendAndClose(_ message: [UInt8]) -> [Action] {
        send(message) + close(.closedLocally)
    }

    /// Closes the link from this side.
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
