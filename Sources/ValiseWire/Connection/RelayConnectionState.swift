public import ValiseCrypto

/// The relay's side of one connection, as a pure state machine: feed it the bytes that
/// arrive and act on what it returns. It reads the client's cleartext preamble, runs the
/// Noise_XKhfs handshake as responder, asks for an admission decision once it knows the
/// client's static key, and then turns frames into application messages and messages into
/// frames.
///
/// A preamble without the magic, or a first handshake message that does not decrypt
/// (someone who does not know the relay's key: a scanner), is dropped without an answer; a
/// preamble for another version or channel is answered with the relay's version. A relay
/// link's preamble (channel 2 version 1) hands the connection to a `LinkResponderState`.
public struct RelayConnectionState: Sendable {
    public enum Action: Equatable, Sendable {
        /// Send these bytes.
        case write([UInt8])
        /// The handshake is done: decide whether this static key may stay, then call
        /// `admit()` or `refuse(with:)`.
        case authenticate(AgreementPublicKey)
        /// A complete application message from the client.
        case deliver([UInt8])
        /// Close the connection (after any writes returned before it).
        case close(Reason)
        /// The preamble opened a relay link (channel 2 version 1): this state is done and
        /// ignores further bytes; feed these bytes, which followed the preamble, and the
        /// rest of the connection to a `LinkResponderState(afterPreamble: true)`.
        case relayLink([UInt8])
    }

    public enum Reason: Equatable, Sendable, CustomStringConvertible {
        /// The first message did not decrypt: closed without a word.
        case unknownPeer
        /// The first 8 bytes were not a Valise preamble: closed without a word.
        case notValise
        /// A preamble for a version or channel this relay does not serve: answered with
        /// its version, then closed.
        case otherVersion(channel: UInt8, version: UInt8)
        case handshakeFailed(String)
        case protocolViolation(String)
        case refused
        case closedByRelay

        public var description: String {
            switch self {
            case .unknownPeer: "the first handshake message did not decrypt (not sent to this relay's key)"
            case .notValise: "the first bytes were not a Valise preamble"
            case .otherVersion(let channel, let version): "a preamble for channel \(channel) version \(version), which this relay does not serve"
            case .handshakeFailed(let why): "handshake failed: \(why)"
            case .protocolViolation(let why): "protocol violation: \(why)"
            case .refused: "refused admission"
            case .closedByRelay: "closed by the relay"
            }
        }
    }

    private enum State: Sendable {
        /// The preamble's bytes so far (fewer than 8).
        case awaitingPreamble([UInt8])
        case handshaking(HandshakeState)
        case awaitingAdmission(NoiseSession, buffered: [[UInt8]])
        case established(NoiseSession)
        /// Handed to a LinkResponderState.
        case relayLink
        case closed
    }

    /// Application messages buffered while admission is decided; a client that sends more
    /// before being admitted is cut off.
    public static let maximumBufferedBeforeAdmission = 8

    /// The longest handshake message the relay reads: XKhfs's first (1248 bytes).
    static let longestHandshakeRead = ValiseTransport.clientProtocol.messageLengths.enumerated()
        .filter { $0.offset % 2 == 0 }.map(\.element).max()!

    private var state: State = .awaitingPreamble([])
    private var decoder = FrameDecoder()
    private let maximumMessageLength: Int
    private let relayKey: AgreementPrivateKey
    private var handshakeMessagesRead = 0

    public init(relayKey: AgreementPrivateKey, maximumMessageLength: Int) {
        self.maximumMessageLength = maximumMessageLength
        self.relayKey = relayKey
    }

    public var isEstablished: Bool {
        if case .established = state { return true }
        return false
    }

    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Bytes held for an incomplete preamble or frame (bounded by one frame).
    public var bufferedByteCount: Int {
        if case .awaitingPreamble(let bytes) = state { return bytes.count }
        return decoder.bufferedByteCount
    }

    /// Frames completed so far; a frame timer restarts when this changes.
    public var completedFrameCount: Int { decoder.completedFrameCount }

    /// Bytes arrived from the client.
    public mutating func receive(_ bytes: [UInt8]) -> [Action] {
        guard !isClosed else { return [] }
        if case .relayLink = state { return [] }
        var bytes = bytes[...]
        if case .awaitingPreamble(var preamble) = state {
            guard Preamble.fill(&preamble, from: &bytes) else {
                state = .awaitingPreamble(preamble)
                return []
            }
            if Preamble(parsing: preamble) == .relayLink {
                state = .relayLink
                return [.relayLink(Array(bytes))]
            }
            if let refusal = start(preamble) { return refusal }
        }
        decoder.append(bytes)
        var actions: [Action] = []
        while !isClosed {
            let frame: [UInt8]?
            do {
                frame = try decoder.nextFrame()
            } catch {
                // Before a first message has decrypted, a frame longer than any first message
                // is a stranger's, dropped as silently as one that does not decrypt.
                if case .handshaking = state, handshakeMessagesRead == 0, error.code == FramingError.frameTooLargeCode {
                    return actions + close(.unknownPeer)
                }
                return actions + close(.protocolViolation(error.message))
            }
            guard let frame else { break }
            actions += handle(frame)
        }
        return actions
    }

    /// The preamble is complete: the handshake starts with its prologue, or the connection
    /// ends (silently for a stranger, with the relay's version for another Valise).
    private mutating func start(_ bytes: [UInt8]) -> [Action]? {
        guard let preamble = Preamble(parsing: bytes) else { return close(.notValise) }
        guard preamble == .client else {
            let served: UInt8 = switch Preamble.Channel(rawValue: preamble.channel) {
            case .client?: ValiseTransport.clientVersion
            case .relayLink?: ValiseTransport.relayLinkVersion
            case nil: 0
            }
            return [.write(RelayNotice.version(served).bytes)] + close(.otherVersion(channel: preamble.channel, version: preamble.version))
        }
        state = .handshaking(try! HandshakeState(
            protocol: ValiseTransport.clientProtocol, role: .responder, prologue: preamble.prologue, staticKey: relayKey, remoteStaticKey: nil))
        // Until the client is authenticated, no frame may be longer than the longest
        // handshake message the relay reads (the first, 1248 bytes).
        decoder.maximumLength = Self.longestHandshakeRead
        return nil
    }

    private mutating func handle(_ frame: [UInt8]) -> [Action] {
        switch state {
        case .handshaking(var handshake):
            do {
                let payload = try handshake.readMessage(frame)
                // Valise's handshake payloads are empty (docs/PROTOCOL.md, "Transport").
                guard payload.isEmpty else { return close(.handshakeFailed("a handshake payload that is not empty")) }
            } catch {
                return close(handshakeMessagesRead == 0 ? .unknownPeer : .handshakeFailed(error.message))
            }
            handshakeMessagesRead += 1
            if handshake.isComplete {
                decoder.maximumLength = FrameDecoder.maximumFrameLength
                let transport = handshake.split()!
                state = .awaitingAdmission(NoiseSession(transport: transport, maximumMessageLength: maximumMessageLength), buffered: [])
                return [.authenticate(transport.remoteStaticKey!)]
            }
            do {
                let reply = try handshake.writeMessage(payload: [])
                state = .handshaking(handshake)
                return [.write(FrameDecoder.frame(reply))]
            } catch {
                return close(.handshakeFailed(error.message))
            }

        case .awaitingAdmission(var session, var buffered):
            do {
                if let message = try session.open(frame) { buffered.append(message) }
            } catch {
                return close(.protocolViolation(error.description))
            }
            guard buffered.count <= Self.maximumBufferedBeforeAdmission else {
                return close(.protocolViolation("too many messages before admission"))
            }
            state = .awaitingAdmission(session, buffered: buffered)
            return []

        case .established(var session):
            do {
                let message = try session.open(frame)
                state = .established(session)
                return message.map { [.deliver($0)] } ?? []
            } catch {
                return close(.protocolViolation(error.description))
            }

        case .awaitingPreamble, .relayLink, .closed:
            return []
        }
    }

    /// Admission granted: messages that arrived meanwhile are delivered now.
    public mutating func admit() -> [Action] {
        guard case .awaitingAdmission(let session, let buffered) = state else { return [] }
        state = .established(session)
        return buffered.map { .deliver($0) }
    }

    /// Admission refused: `message` (an encoded error for the client) is sent, then the
    /// connection closes.
    public mutating func refuse(with message: [UInt8]) -> [Action] {
        guard !isClosed else { return [] }
        guard case .awaitingAdmission(var session, _) = state else { return close(.refused) }
        let bytes = (try? session.seal(message)) ?? []
        return (bytes.isEmpty ? [] : [.write(bytes)]) + close(.refused)
    }

    /// Sends an application message (ignored unless established).
    public mutating func send(_ message: [UInt8]) -> [Action] {
        guard case .established(var session) = state else { return [] }
        do {
            let bytes = try session.seal(message)
            state = .established(session)
            return [.write(bytes)]
        } catch {
            return close(.protocolViolation(error.message))
        }
    }

    /// Sends a last message, then closes (revocation, shutdown).
    public mutating func sendAndClose(_ message: [UInt8]) -> [Action] {
        send(message) + close(.closedByRelay)
    }

    /// Closes once: a connection that is already closed asks for nothing more.
    private mutating func close(_ reason: Reason) -> [Action] {
        guard !isClosed else { return [] }
        state = .closed
        return [.close(reason)]
    }
}

/// Constants of the Valise transport (docs/PROTOCOL.md, "Transport").
public enum ValiseTransport {
    /// The version of the client channel this build speaks, and the only one a relay serves:
    /// 2, Noise_XKhfs_25519+MLKEM768_ChaChaPoly_BLAKE2b (1 was the classical Noise_XK).
    public static let clientVersion: UInt8 = 2
    /// The handshake of the client channel's version 2.
    public static let clientProtocol = NoiseProtocol.hybridClientRelay
    /// The first part of the client channel's Noise prologue; the preamble's 8 bytes follow
    /// it, so that both sides mix in what the client announced, and a client of another
    /// protocol fails.
    public static let prologueLabel = Array("valise/1".utf8)
    /// The whole prologue of this build's client channel (16 bytes).
    public static var prologue: [UInt8] { Preamble.client.prologue }
    /// The version of the relay-link channel (channel 2): Noise_KKhfs_25519+MLKEM768_ChaChaPoly_BLAKE2b.
    public static let relayLinkVersion: UInt8 = 1
    /// The handshake of the relay-link channel.
    public static let relayLinkProtocol = NoiseProtocol.hybridRelayLink
    /// The first part of a relay link's prologue, its own so that a link's handshake can
    /// never be taken for a client's.
    public static let relayLinkPrologueLabel = Array("valise/link/1".utf8)
    /// The whole prologue of a relay link (21 bytes): the label ‖ the link's preamble.
    public static var relayLinkPrologue: [UInt8] { relayLinkPrologueLabel + Preamble.relayLink.bytes }
    /// Application messages are at most this long unless configured otherwise (1 MiB).
    public static let defaultMaximumMessageLength = 1 << 20
}
