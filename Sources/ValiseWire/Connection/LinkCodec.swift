import SwiftProtobuf

/// Encodes and decodes relay-link messages (proto/valise_link.proto), so that the relay
/// speaks in bytes and generated message types without importing SwiftProtobuf.
public enum LinkCodec {
    /// The relay-link protocol version a LinkHello and a LinkWelcome name
    /// (docs/PROTOCOL.md, "Relay links").
    public static let protocolVersion: UInt32 = 1

    /// No link message is longer than the relay's application messages (1 MiB); the
    /// transport already stops longer ones, this bound keeps a decoder safe on its own.
    public static let maximumMessageLength = ValiseTransport.defaultMaximumMessageLength

    public struct DecodingError: Error, Sendable {}

    public static func decodeRequest(_ bytes: [UInt8]) throws(DecodingError) -> LinkLinkRequest {
        guard bytes.count <= maximumMessageLength else { throw DecodingError() }
        do { return try LinkLinkRequest(serializedBytes: bytes) } catch { throw DecodingError() }
    }

    public static func decodeReply(_ bytes: [UInt8]) throws(DecodingError) -> LinkLinkReply {
        guard bytes.count <= maximumMessageLength else { throw DecodingError() }
        do { return try LinkLinkReply(serializedBytes: bytes) } catch { throw DecodingError() }
    }

    public static func encode(_ message: LinkLinkRequest) -> [UInt8] {
        // Encoding a message built in code cannot fail (no required fields in proto3).
        (try? message.serializedBytes()) ?? []
    }

    public static func encode(_ message: LinkLinkReply) -> [UInt8] {
        (try? message.serializedBytes()) ?? []
    }
}
