import SwiftProtobuf

/// Encodes and decodes relay protocol messages (proto/valise_relay.proto), so that the rest
/// of Valise speaks in bytes and generated message types without importing SwiftProtobuf.
public enum WireCodec {
    /// The relay protocol version a Hello names (docs/PROTOCOL.md, "Relay protocol"): 3
    /// since prekeys carry ML-KEM-1024 KEM prekeys for PQXDH (2 had X25519 prekeys only;
    /// 1 named one member per prekey fetch).
    public static let protocolVersion: UInt32 = 3

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
