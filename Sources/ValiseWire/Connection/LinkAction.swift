/// What a relay link's state machine asks of its I/O shell, on either side
/// (LinkInitiatorState, LinkResponderState): both sides do the same after the handshake.
public enum LinkAction: Equatable, Sendable {
    /// Send these bytes.
    case write([UInt8])
    /// The handshake is complete: the peer proved it holds the key the directory names
    /// (the responder: the key the initiator announced, `peerKey`).
    case established
    /// A complete application message from the peer: a LinkReply at the initiator, a
    /// LinkRequest at the responder.
    case deliver([UInt8])
    /// Close the connection (after any writes returned before it).
    case close(LinkCloseReason)
}

extension NoiseSession {
    /// One transport frame of an established link: the message it completes, nothing (a
    /// chunk of a longer one), or the close that a bad frame calls for.
    mutating func linkOpen(_ frame: [UInt8]) -> LinkAction? {
        do {
            return try open(frame).map { .deliver($0) }
        } catch {
            return .close(.protocolViolation(error.description))
        }
    }

    /// An application message for an established link: its frames, or the close.
    mutating func linkSeal(_ message: [UInt8]) -> LinkAction {
        do {
            return .write(try seal(message))
        } catch {
            return .close(.failed("cannot send: \(error.message)"))
        }
    }
}
