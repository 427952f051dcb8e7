public import ValiseCrypto

/// The client's side of one connection, as a pure state machine: the Noise_XK handshake
/// as initiator, with the relay's static key pinned from the organisation bundle, then
/// application messages both ways.
public struct ClientConnectionState: Sendable {
    public enum Action: Equatable, Sendable {
        case write([UInt8])
        /// The handshake is complete: the relay proved it holds the pinned key.
        case established
        case deliver([UInt8])
        case close(String)
    }

    private enum State: Sendable {
        case idle(HandshakeState)
        case handshaking(HandshakeState)
        case established(NoiseSession)
        case closed
    }

    private var state: State
    private var decoder = FrameDecoder()
    private let maximumMessageLength: Int

    public init(
        clientKey: AgreementPrivateKey, relayKey: AgreementPublicKey, prologue: [UInt8] = ValiseTransport.prologue,
        maximumMessageLength: Int
    ) {
        self.maximumMessageLength = maximumMessageLength
        state = .idle(try! HandshakeState(
            protocol: .valise, role: .initiator, prologue: prologue, staticKey: clientKey, remoteStaticKey: relayKey))
    }

    public var isEstablished: Bool {
        if case .established = state { return true }
        return false
    }

    /// The first handshake message.
    public mutating func start() -> [Action] {
        guard case .idle(var handshake) = state else { return [] }
        do {
            let first = try handshake.writeMessage(payload: [])
            state = .handshaking(handshake)
            return [.write(FrameDecoder.frame(first))]
        } catch {
            return close("handshake failed: \(error.message)")
        }
    }

    public mutating func receive(_ bytes: [UInt8]) -> [Action] {
        if case .closed = state { return [] }
        decoder.append(bytes)
        var actions: [Action] = []
        while true {
            if case .closed = state { break }
            let frame: [UInt8]?
            do {
                frame = try decoder.nextFrame()
            } catch {
                return actions + close("protocol violation: \(error.message)")
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
                guard payload.isEmpty else { return close("protocol violation: the relay's handshake payload is not empty") }
                let last = try handshake.writeMessage(payload: [])
                let session = NoiseSession(transport: handshake.split()!, maximumMessageLength: maximumMessageLength)
                state = .established(session)
                return [.write(FrameDecoder.frame(last)), .established]
            } catch {
                // The relay did not prove it holds the pinned key (or the reply was damaged).
                return close("the relay's handshake failed: \(error.message); it may not be the relay the organisation bundle names")
            }
        case .established(var session):
            do {
                let message = try session.open(frame)
                state = .established(session)
                return message.map { [.deliver($0)] } ?? []
            } catch {
                return close("protocol violation: \(error.description)")
            }
        case .idle:
            return close("protocol violation: the relay spoke first")
        case .closed:
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
            return close("cannot send: \(error.message)")
        }
    }

    private mutating func close(_ reason: String) -> [Action] {
        if case .closed = state { return [] }
        state = .closed
        return [.close(reason)]
    }
}
