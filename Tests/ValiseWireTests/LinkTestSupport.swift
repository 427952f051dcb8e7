import Testing
import ValiseTestSupport
import ValiseCrypto
@testable import ValiseWire

// An in-memory relay link between a LinkInitiatorState and a LinkResponderState, for the
// link tests: what one writes reaches the other's `receive`, cut by a `Chunker`, and every
// action is logged. `tamper` may change the bytes in flight.

extension LinkAction {
    var written: [UInt8]? { if case .write(let bytes) = self { bytes } else { nil } }
    var delivered: [UInt8]? { if case .deliver(let message) = self { message } else { nil } }
    var closeReason: LinkCloseReason? { if case .close(let reason) = self { reason } else { nil } }
}

struct LinkPair {
    let initiatorKey: AgreementPrivateKey
    let responderKey: AgreementPrivateKey
    var initiator: LinkInitiatorState
    var responder: LinkResponderState
    var chunker: Chunker
    var toResponder = ByteQueue()
    var toInitiator = ByteQueue()
    var initiatorLog: [LinkAction] = []
    var responderLog: [LinkAction] = []
    /// Bytes sent so far in each direction (offsets for `tamper`).
    var sentToResponder = 0
    var sentToInitiator = 0
    /// Changes one byte in flight: (toResponder?, offset in that direction's stream, xor).
    var tamper: (toResponder: Bool, offset: Int, mask: UInt8)?

    /// `pinned`: the key the initiator expects (the responder's unless a test says
    /// otherwise); `admit`: the responder's decision.
    init(
        chunking: Chunking = .whole, pinned: AgreementPublicKey? = nil,
        initiator: LinkInitiatorState? = nil, initiatorKey: AgreementPrivateKey = AgreementPrivateKey(),
        responderKey: AgreementPrivateKey = AgreementPrivateKey(),
        admit: (@Sendable (AgreementPublicKey) -> Bool)? = nil
    ) {
        self.initiatorKey = initiatorKey
        self.responderKey = responderKey
        self.initiator = initiator ?? LinkInitiatorState(localStatic: initiatorKey, remoteStatic: pinned ?? responderKey.publicKey)
        let expected = initiatorKey.publicKey
        responder = LinkResponderState(localStatic: responderKey, admit: admit ?? { $0 == expected })
        chunker = Chunker(chunking)
    }

    private mutating func altered(_ bytes: [UInt8], toResponder direction: Bool) -> [UInt8] {
        var bytes = bytes
        let base = direction ? sentToResponder : sentToInitiator
        if let tamper, tamper.toResponder == direction, (base..<(base + bytes.count)).contains(tamper.offset) {
            bytes[tamper.offset - base] ^= tamper.mask
        }
        if direction { sentToResponder += bytes.count } else { sentToInitiator += bytes.count }
        return bytes
    }

    mutating func fromInitiator(_ actions: [LinkAction]) {
        initiatorLog += actions
        for action in actions { if let bytes = action.written { toResponder.append(altered(bytes, toResponder: true)) } }
    }

    mutating func fromResponder(_ actions: [LinkAction]) {
        responderLog += actions
        for action in actions { if let bytes = action.written { toInitiator.append(altered(bytes, toResponder: false)) } }
    }

    mutating func start() { fromInitiator(initiator.start()) }
    mutating func initiatorSends(_ message: [UInt8]) { fromInitiator(initiator.send(message)) }
    mutating func responderSends(_ message: [UInt8]) { fromResponder(responder.send(message)) }

    /// Moves bytes until both directions are quiet, alternating piece by piece.
    mutating func pump() {
        while !(toResponder.isEmpty && toInitiator.isEmpty) {
            if !toResponder.isEmpty {
                fromResponder(responder.receive(toResponder.take(chunker.nextSize(remaining: toResponder.count))))
            }
            if !toInitiator.isEmpty {
                fromInitiator(initiator.receive(toInitiator.take(chunker.nextSize(remaining: toInitiator.count))))
            }
        }
    }

    mutating func handshake() {
        start()
        pump()
    }

    var initiatorDelivered: [[UInt8]] { initiatorLog.compactMap(\.delivered) }
    var responderDelivered: [[UInt8]] { responderLog.compactMap(\.delivered) }
    var initiatorCloses: [LinkCloseReason] { initiatorLog.compactMap(\.closeReason) }
    var responderCloses: [LinkCloseReason] { responderLog.compactMap(\.closeReason) }
    var responderWrites: [[UInt8]] { responderLog.compactMap(\.written) }
}
