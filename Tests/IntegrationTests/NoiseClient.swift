import Foundation
import ValiseCrypto
import ValiseWire

/// A Noise_XKhfs initiator (or, to be refused, a classical Noise_XK one) built from the bare HandshakeState, so that it can send what a
/// well-behaved client never would: another prologue, fragments of its own making.
struct NoiseClient {
    private var handshake: HandshakeState
    private var transport: NoiseTransport?

    init(
        key: AgreementPrivateKey, relayKey: AgreementPublicKey, prologue: [UInt8] = ValiseTransport.prologue,
        protocol noiseProtocol: NoiseProtocol = ValiseTransport.clientProtocol
    ) throws {
        handshake = try HandshakeState(protocol: noiseProtocol, role: .initiator, prologue: prologue, staticKey: key, remoteStaticKey: relayKey)
    }

    /// The first handshake message (e, es, e1), framed. The preamble goes first, from
    /// `HostileSocket` (whatever the prologue here).
    mutating func firstMessage() throws -> [UInt8] { FrameDecoder.frame(try handshake.writeMessage(payload: [])) }

    /// Reads the relay's reply (unframed); returns the third message (s, se), framed.
    mutating func finish(reply: [UInt8]) throws -> [UInt8] {
        _ = try handshake.readMessage(reply)
        let third = try handshake.writeMessage(payload: [])
        transport = handshake.split()
        return FrameDecoder.frame(third)
    }

    /// One transport message with exactly this plaintext (fragment header included), framed.
    mutating func fragment(_ plaintext: [UInt8]) throws -> [UInt8] {
        guard transport != nil else { throw HostileSocket.Failure("no transport yet") }
        return FrameDecoder.frame(try transport!.encrypt(plaintext))
    }

    /// A client message in one fragment, framed.
    mutating func seal(_ message: WireClientMessage) throws -> [UInt8] {
        try fragment([MessageFragments.lastChunk] + WireCodec.encode(message))
    }

    /// One relay message from one frame (the relay's messages here fit in one fragment).
    mutating func open(_ frame: [UInt8]) throws -> WireRelayMessage {
        guard transport != nil else { throw HostileSocket.Failure("no transport yet") }
        let plaintext = try transport!.decrypt(frame)
        guard plaintext.first == MessageFragments.lastChunk else { throw HostileSocket.Failure("a fragmented relay message") }
        return try WireCodec.decodeRelayMessage(Array(plaintext.dropFirst()))
    }

    /// Every whole relay message in `bytes` (frames, each one fragment).
    mutating func openAll(_ bytes: [UInt8]) throws -> [WireRelayMessage] {
        var decoder = FrameDecoder()
        decoder.append(bytes)
        var messages: [WireRelayMessage] = []
        while let frame = try decoder.nextFrame() { messages.append(try open(frame)) }
        return messages
    }
}
