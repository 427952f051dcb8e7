import SwiftProtobuf

/// Encodes and decodes relay protocol messages (proto/valise_relay.proto), so that the rest
/// of Valise speaks in bytes and generated message types without importing SwiftProtobuf.
public enum WireCodec {
    /// The relay protocol version a Hello names (docs/PROTOCOL.md, "Relay protocol"): 2
    /// since a prekey fetch names several members (version 1 named one).
    public static let protocolVersion: UInt32 = 2

    public struct DecodingError: Error, Sendable {}

    public static func decodeClientMessage(_ bytes: [UInt8]) throws(DecodingError) -> WireClientMessage {
        do { return try WireClientMessage(serializedBytes: bytes) } catch { throw DecodingError() }
    }

    public static func decodeRelayMessage(_ bytes: [UInt8]) throws(DecodingError) -> WireRelayMessage {
        do { return try WireRelayMessage(serializedBytes: bytes) } catch { throw DecodingError() }
    }

    public static func encode(_ message: WireClientMessage) -> [UInt8] {
        // Encoding a message built in code cannot fail (no required fields in proto3).
        (try? message.serializedBytes()) ?? []
    }

    public static func encode(_ message: WireRelayMessage) -> [UInt8] {
        (try? message.serializedBytes()) ?? []
    }
}
