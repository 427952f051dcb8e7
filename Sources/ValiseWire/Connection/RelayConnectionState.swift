public import ValiseCrypto

/// The relay's side of one connection, as a pure state machine: feed it the bytes that
/// arrive and act on what it returns. It runs the Noise_XK handshake as responder, asks
/// for an admission decision once it knows the client's static key, and then turns frames
/// into application messages and messages into frames.
///
/// A first handshake message that does not decrypt (someone who does not know the relay's
/// key: a scanner) is dropped without an answer.
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
    }

    public enum Reason: Equatable, Sendable, CustomStringConvertible {
        /// The first message did not decrypt: closed without a word.
        case unknownPeer
        case handshakeFailed(String)
        case protocolViolation(String)
        case refused
        case closedByRelay

        public var description: String {
            switch self {
            case .unknownPeer: "the first handshake message did not decrypt (not sent to this relay's key)"
            case .handshakeFailed(let why): "handshake failed: \(why)"
            case .protocolViolation(let why): "protocol violation: \(why)"
            case .refused: "refused admission"
            case .closedByRelay: "closed by the relay"
            }
        }
    }

    private enum State: Sendable {
        case handshaking(HandshakeState)
        case awaitingAdmission(NoiseSession, buffered: [[UInt8]])
        case established(NoiseSession)
        case closed
    }

    /// Application messages buffered while admission is decided; a client that sends more
    /// before being admitted is cut off.
    public static let maximumBufferedBeforeAdmission = 8

    private var state: State
    private var decoder = FrameDecoder()
    private let maximumMessageLength: Int
    private var handshakeMessagesRead = 0

    public init(relayKey: AgreementPrivateKey, prologue: [UInt8] = ValiseTransport.prologue, maximumMessageLength: Int) {
        self.maximumMessageLength = maximumMessageLength
        let handshake = try! HandshakeState(
            protocol: .valise, role: .responder, prologue: prologue, staticKey: relayKey, remoteStaticKey: nil)
        state = .handshaking(handshake)
    }

    public var isEstablished: Bool {
        if case .established = state { return true }
        return false
    }

    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Bytes held for an incomplete frame (bounded by one frame).
    public var bufferedByteCount: Int { decoder.bufferedByteCount }

    /// Frames completed so far; a frame timer restarts when this changes.
    public var completedFrameCount: Int { decoder.completedFrameCount }

    /// Bytes arrived from the client.
    public mutating func receive(_ bytes: [UInt8]) -> [Action] {
        guard !isClosed else { return [] }
        decoder.append(bytes)
        var actions: [Action] = []
        while !isClosed {
            let frame: [UInt8]?
            do {
                frame = try decoder.nextFrame()
            } catch {
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
                // Valise's handshake payloads are empty (docs/PROTOCOL.md, "Transport").
                guard payload.isEmpty else { return close(.handshakeFailed("a handshake payload that is not empty")) }
            } catch {
                return close(handshakeMessagesRead == 0 ? .unknownPeer : .handshakeFailed(error.message))
            }
            handshakeMessagesRead += 1
            if handshake.isComplete {
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

        case .closed:
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
    /// The Noise prologue: both sides mix it in, so a client of another protocol fails.
    public static let prologue = Array("valise/1".utf8)
    /// Application messages are at most this long unless configured otherwise (1 MiB).
    public static let defaultMaximumMessageLength = 1 << 20
}
