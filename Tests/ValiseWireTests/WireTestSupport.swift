import Testing
import ValiseTestSupport
import ValiseCrypto
@testable import ValiseWire

// Helpers shared by the wire tests (the seeded PRNG is in ValiseTestSupport): chunkings
// of a byte stream, handshakes between two HandshakeStates, and an in-memory link between
// a relay and a client.

/// How a byte stream is cut into the pieces that reach `receive`.
enum Chunking: Sendable, CustomTestStringConvertible {
    /// Everything there is, at once.
    case whole
    /// One byte per call.
    case oneByte
    /// Pieces of 1 to `maximum` bytes, drawn from a PRNG with `seed`.
    case random(seed: UInt64, maximum: Int)

    var testDescription: String {
        switch self {
        case .whole: "whole"
        case .oneByte: "one byte at a time"
        case .random(let seed, let maximum): "random pieces of 1…\(maximum) (seed \(seed))"
        }
    }

    static let all: [Chunking] = [.whole, .oneByte, .random(seed: 1, maximum: 7), .random(seed: 2, maximum: 5_000)]
}

/// Draws piece sizes for one `Chunking`.
struct Chunker {
    let mode: Chunking
    private var rng: SplitMix64

    init(_ mode: Chunking) {
        self.mode = mode
        if case .random(let seed, _) = mode { rng = SplitMix64(seed: seed) } else { rng = SplitMix64(seed: 0) }
    }

    /// The size of the next piece when `remaining` bytes are waiting (at least 1).
    mutating func nextSize(remaining: Int) -> Int {
        switch mode {
        case .whole: remaining
        case .oneByte: 1
        case .random(_, let maximum): min(remaining, rng.int(in: 1...maximum))
        }
    }

    mutating func pieces(of bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var pieces: [ArraySlice<UInt8>] = []
        var offset = 0
        while offset < bytes.count {
            let size = nextSize(remaining: bytes.count - offset)
            pieces.append(bytes[offset..<(offset + size)])
            offset += size
        }
        return pieces
    }
}

/// Bytes in flight in one direction: appended at the end, taken from the front in O(1).
struct ByteQueue {
    private var bytes: [UInt8] = []
    private var start = 0

    var count: Int { bytes.count - start }
    var isEmpty: Bool { count == 0 }

    mutating func append(_ more: [UInt8]) { bytes += more }

    mutating func take(_ n: Int) -> [UInt8] {
        let piece = Array(bytes[start..<(start + n)])
        start += n
        if start == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65_536 && start > bytes.count / 2 {
            bytes.removeSubrange(0..<start)
            start = 0
        }
        return piece
    }
}

/// Every complete frame in `bytes`, which must end on a frame boundary.
func unframe(_ bytes: [UInt8]) throws -> [[UInt8]] {
    var decoder = FrameDecoder()
    decoder.append(bytes)
    var frames: [[UInt8]] = []
    while let frame = try decoder.nextFrame() { frames.append(frame) }
    #expect(decoder.bufferedByteCount == 0, "the bytes end on a frame boundary")
    return frames
}

/// A completed Noise_XKhfs handshake between two HandshakeStates (empty payloads, the Valise
/// prologue), as the connection state machines run it.
struct CompletedHandshake {
    let clientKey = AgreementPrivateKey()
    let relayKey = AgreementPrivateKey()
    var client: NoiseTransport
    var relay: NoiseTransport

    init() throws {
        var initiator = try HandshakeState(
            protocol: ValiseTransport.clientProtocol, role: .initiator, prologue: ValiseTransport.prologue, staticKey: clientKey,
            remoteStaticKey: relayKey.publicKey)
        var responder = try HandshakeState(
            protocol: ValiseTransport.clientProtocol, role: .responder, prologue: ValiseTransport.prologue, staticKey: relayKey, remoteStaticKey: nil)
        _ = try responder.readMessage(initiator.writeMessage(payload: []))
        _ = try initiator.readMessage(responder.writeMessage(payload: []))
        _ = try responder.readMessage(initiator.writeMessage(payload: []))
        client = try #require(initiator.split())
        relay = try #require(responder.split())
    }
}

extension RelayConnectionState.Action {
    var written: [UInt8]? { if case .write(let bytes) = self { bytes } else { nil } }
    var delivered: [UInt8]? { if case .deliver(let message) = self { message } else { nil } }
    var closeReason: RelayConnectionState.Reason? { if case .close(let reason) = self { reason } else { nil } }
    var isWrite: Bool { written != nil }
}

extension ClientConnectionState.Action {
    var written: [UInt8]? { if case .write(let bytes) = self { bytes } else { nil } }
    var delivered: [UInt8]? { if case .deliver(let message) = self { message } else { nil } }
    var closeReason: String? { if case .close(let reason) = self { reason.description } else { nil } }
    var isWrite: Bool { written != nil }
}

extension RelayConnectionState.Reason {
    var isProtocolViolation: Bool { if case .protocolViolation = self { true } else { false } }
    var isHandshakeFailure: Bool { if case .handshakeFailed = self { true } else { false } }
}

/// A relay and a client wired to each other in memory: what one writes reaches the other's
/// `receive`, cut into pieces by a `Chunker`. Every action either side returned is logged.
struct Link {
    let relayKey: AgreementPrivateKey
    let clientKey: AgreementPrivateKey
    var relay: RelayConnectionState
    var client: ClientConnectionState
    var chunker: Chunker
    var toRelay = ByteQueue()
    var toClient = ByteQueue()
    var relayLog: [RelayConnectionState.Action] = []
    var clientLog: [ClientConnectionState.Action] = []

    init(
        chunking: Chunking = .whole, relayMaximum: Int = ValiseTransport.defaultMaximumMessageLength,
        clientMaximum: Int = ValiseTransport.defaultMaximumMessageLength, clientPins pinned: AgreementPublicKey? = nil,
        clientPreamble: Preamble = .client, clientProtocol: NoiseProtocol = ValiseTransport.clientProtocol
    ) {
        relayKey = AgreementPrivateKey()
        clientKey = AgreementPrivateKey()
        relay = RelayConnectionState(relayKey: relayKey, maximumMessageLength: relayMaximum)
        client = ClientConnectionState(
            clientKey: clientKey, relayKey: pinned ?? relayKey.publicKey, preamble: clientPreamble,
            protocol: clientProtocol, maximumMessageLength: clientMaximum)
        chunker = Chunker(chunking)
    }

    mutating func fromClient(_ actions: [ClientConnectionState.Action]) {
        clientLog += actions
        for action in actions { if let bytes = action.written { toRelay.append(bytes) } }
    }

    mutating func fromRelay(_ actions: [RelayConnectionState.Action]) {
        relayLog += actions
        for action in actions { if let bytes = action.written { toClient.append(bytes) } }
    }

    mutating func start() { fromClient(client.start()) }
    mutating func clientSends(_ message: [UInt8]) { fromClient(client.send(message)) }
    mutating func relaySends(_ message: [UInt8]) { fromRelay(relay.send(message)) }
    mutating func admit() { fromRelay(relay.admit()) }

    /// Moves at most `limit` bytes (everything, by default, until both directions are
    /// quiet), alternating directions piece by piece.
    mutating func pump(limit: Int = .max) {
        var budget = limit
        while budget > 0 && !(toRelay.isEmpty && toClient.isEmpty) {
            if !toRelay.isEmpty {
                let size = min(budget, chunker.nextSize(remaining: toRelay.count))
                budget -= size
                fromRelay(relay.receive(toRelay.take(size)))
            }
            if budget > 0 && !toClient.isEmpty {
                let size = min(budget, chunker.nextSize(remaining: toClient.count))
                budget -= size
                fromClient(client.receive(toClient.take(size)))
            }
        }
    }

    /// Runs the handshake to the point where the relay asks for an admission decision.
    mutating func handshake() {
        start()
        pump()
    }

    var relayDelivered: [[UInt8]] { relayLog.compactMap(\.delivered) }
    var clientDelivered: [[UInt8]] { clientLog.compactMap(\.delivered) }
    var relayCloses: [RelayConnectionState.Reason] { relayLog.compactMap(\.closeReason) }
    var clientCloses: [String] { clientLog.compactMap(\.closeReason) }
    /// The relay's actions other than writes.
    var relayEvents: [RelayConnectionState.Action] { relayLog.filter { !$0.isWrite } }
}
