/// Why a relay link's connection ends, on either side (LinkInitiatorState,
/// LinkResponderState). A peer's notice is unauthenticated, so `busy` and `otherVersion`
/// report what the peer said, never proof of anything.
public enum LinkCloseReason: Equatable, Sendable, CustomStringConvertible {
    /// Responder: the first 8 bytes were not a Valise preamble; closed without a word.
    case notValise
    /// Responder: a preamble for a channel or version it does not serve here (answered with
    /// its version, then closed). Initiator: the peer said VERSION: it speaks `peer` on
    /// channel 2 (0: it does not serve links); this side speaks `local`.
    case otherVersion(peer: UInt8, local: UInt8)
    /// Initiator: the peer said BUSY.
    case busy
    /// Responder: the initiator's announced key is not a relay it links with; closed
    /// without a word.
    case notAdmitted
    /// Responder: frame 1 did not decrypt (not made for this relay's key, or with a key
    /// other than the one announced); closed without a word.
    case unknownPeer
    /// The handshake failed (a frame of the wrong length, a reply that did not prove the
    /// pinned key, a damaged message).
    case handshakeFailed(String)
    /// After the handshake: a transport message that did not decrypt, a bad fragment flag,
    /// a message over the bound.
    case protocolViolation(String)
    /// A message could not be sent.
    case failed(String)
    /// This side closed it (shutdown, or the relay's decision).
    case closedLocally

    public var description: String {
        switch self {
        case .notValise: "the first bytes were not a Valise preamble"
        case .otherVersion(let peer, let local): "the peer speaks relay-link version \(peer); this relay speaks version \(local)"
        case .busy: "the peer is busy (at its connection limits)"
        case .notAdmitted: "the initiator's key is not a relay of this directory"
        case .unknownPeer: "the first handshake message did not decrypt (not made for this relay's key)"
        case .handshakeFailed(let why): "link handshake failed: \(why)"
        case .protocolViolation(let why): "protocol violation: \(why)"
        case .failed(let why): why
        case .closedLocally: "closed by this relay"
        }
    }
}
