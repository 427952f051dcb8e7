/// A Noise handshake pattern (section 7) with its psk modifiers (section 9).
public struct NoisePattern: Sendable, Equatable {
    public enum Token: Sendable, Equatable {
        case e, s, ee, es, se, ss, psk
    }

    /// The pattern as written in a protocol name: `XK`, `XXpsk3`, `XKpsk0+psk3`.
    public let name: String
    /// Pre-message tokens: keys each side knows of the other before the handshake.
    let initiatorPreMessage: [Token]
    let responderPreMessage: [Token]
    /// The handshake messages, alternating initiator → responder → initiator …
    let messages: [[Token]]

    public var hasPSK: Bool { messages.contains { $0.contains(.psk) } }

    /// The interactive patterns Valise can run: XK (client to relay) and KK (relay to relay:
    /// both static keys come from the verified directory), and XX, IK and NK (for the
    /// official vectors, and to keep the machine general).
    static let base: [String: (initiator: [Token], responder: [Token], messages: [[Token]])] = [
        "NK": ([], [.s], [[.e, .es], [.e, .ee]]),
        "XK": ([], [.s], [[.e, .es], [.e, .ee], [.s, .se]]),
        "KK": ([.s], [.s], [[.e, .es, .ss], [.e, .ee, .se]]),
        "IK": ([], [.s], [[.e, .es, .s, .ss], [.e, .ee, .se]]),
        "XX": ([], [], [[.e], [.e, .ee, .s, .es], [.s, .se]]),
    ]

    /// Parses a pattern with optional `pskN` modifiers joined by `+`.
    public init(_ text: String) throws(NoiseError) {
        let baseName = String(text.prefix { $0.isUppercase })
        guard let base = Self.base[baseName] else { throw .unsupported(text) }
        var messages = base.messages
        let modifiers = text.dropFirst(baseName.count)
        if !modifiers.isEmpty {
            for modifier in modifiers.split(separator: "+", omittingEmptySubsequences: false) {
                guard modifier.hasPrefix("psk"), let index = Int(modifier.dropFirst(3)), index <= messages.count else {
                    throw .unsupported(text)
                }
                // psk0 goes first in the first message; pskN last in message N.
                if index == 0 {
                    messages[0].insert(.psk, at: 0)
                } else {
                    messages[index - 1].append(.psk)
                }
            }
        }
        self.name = text
        self.initiatorPreMessage = base.initiator
        self.responderPreMessage = base.responder
        self.messages = messages
    }
}

/// A full protocol name: `Noise_<pattern>_25519_ChaChaPoly_BLAKE2b`, the only suite here.
public struct NoiseProtocol: Sendable, Equatable {
    public static let suffix = "_25519_ChaChaPoly_BLAKE2b"
    /// What Valise speaks: XK, no PSK.
    public static let valise = try! NoiseProtocol("Noise_XK_25519_ChaChaPoly_BLAKE2b")

    public let name: String
    public let pattern: NoisePattern

    public init(_ name: String) throws(NoiseError) {
        guard name.hasPrefix("Noise_"), name.hasSuffix(Self.suffix) else { throw .unsupported(name) }
        let patternText = name.dropFirst("Noise_".count).dropLast(Self.suffix.count)
        self.pattern = try NoisePattern(String(patternText))
        self.name = name
    }
}
