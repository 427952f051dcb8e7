import ValiseCrypto

/// A Noise handshake pattern (section 7) with its psk modifiers (section 9), or its `hfs`
/// modifier (the unofficial Noise HFS extension, "KEM-based Hybrid Forward Secrecy for
/// Noise", revision 1).
public struct NoisePattern: Sendable, Equatable {
    public enum Token: Sendable, Equatable {
        case e, s, ee, es, se, ss, psk
        /// HFS: a fresh KEM key pair; its public key is sent as a static key would be.
        case e1
        /// HFS: a KEM ciphertext to the peer's `e1`, sent as a static key would be; both
        /// sides then mix the KEM's shared secret into the chaining key.
        case ekem1
    }

    /// The pattern as written in a protocol name: `XK`, `XXpsk3`, `XKpsk0+psk3`, `XKhfs`.
    public let name: String
    /// Pre-message tokens: keys each side knows of the other before the handshake.
    let initiatorPreMessage: [Token]
    let responderPreMessage: [Token]
    /// The handshake messages, alternating initiator → responder → initiator …
    let messages: [[Token]]

    public var hasPSK: Bool { messages.contains { $0.contains(.psk) } }
    /// Whether the pattern carries the HFS tokens, so its protocol name must name a KEM.
    public var isHybrid: Bool { messages.contains { $0.contains(.e1) } }

    typealias Shape = (initiator: [Token], responder: [Token], messages: [[Token]])

    /// The interactive patterns Valise can run: XK (client to relay) and KK (relay to relay),
    /// and XX, IK and NK (for the official vectors, and to keep the machine general).
    static let base: [String: Shape] = [
        "NK": ([], [.s], [[.e, .es], [.e, .ee]]),
        "XK": ([], [.s], [[.e, .es], [.e, .ee], [.s, .se]]),
        "KK": ([.s], [.s], [[.e, .es, .ss], [.e, .ee, .se]]),
        "IK": ([], [.s], [[.e, .es, .s, .ss], [.e, .ee, .se]]),
        "XX": ([], [], [[.e], [.e, .ee, .s, .es], [.s, .se]]),
    ]

    /// The `hfs` forms Valise uses, written out rather than derived: the extension's rule
    /// ("e1 directly after the DH in the first message, so that it is encrypted") and its
    /// own table disagree for KK (the table has `e, e1, es, ss`). Valise puts `e1` after
    /// every DH of the first message, so the KEM public key is encrypted under a key that
    /// already depends on both static keys; `ekem1` follows `ee` as the extension says.
    static let hybrid: [String: Shape] = [
        "XK": ([], [.s], [[.e, .es, .e1], [.e, .ee, .ekem1], [.s, .se]]),
        "KK": ([.s], [.s], [[.e, .es, .ss, .e1], [.e, .ee, .se, .ekem1]]),
    ]

    /// Parses a pattern with optional `pskN` modifiers joined by `+`, or the single `hfs`
    /// modifier (hfs with psk is not supported).
    public init(_ text: String) throws(NoiseError) {
        let baseName = String(text.prefix { $0.isUppercase })
        let modifiers = text.dropFirst(baseName.count)
        if modifiers == "hfs" {
            guard let shape = Self.hybrid[baseName] else { throw .unsupported(text) }
            self.init(name: text, shape: shape)
            return
        }
        guard let base = Self.base[baseName] else { throw .unsupported(text) }
        var messages = base.messages
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
        self.init(name: text, shape: (base.initiator, base.responder, messages))
    }

    private init(name: String, shape: Shape) {
        self.name = name
        self.initiatorPreMessage = shape.initiator
        self.responderPreMessage = shape.responder
        self.messages = shape.messages
    }
}

/// A full protocol name: `Noise_<pattern>_25519_ChaChaPoly_BLAKE2b`, or for an `hfs` pattern
/// `Noise_<pattern>_25519+MLKEM768_ChaChaPoly_BLAKE2b` (the extension puts the KEM after
/// the DH function, joined by `+`). These are the only suites here.
public struct NoiseProtocol: Sendable, Equatable {
    public static let suffix = "_25519_ChaChaPoly_BLAKE2b"
    public static let hybridSuffix = "_25519+MLKEM768_ChaChaPoly_BLAKE2b"
    /// The classical client-to-relay handshake, preamble version 1: no relay serves it any
    /// more (no downgrade path); kept for the benchmark's comparison and for tests.
    public static let classicalClientRelay = try! NoiseProtocol("Noise_XK" + suffix)
    /// The client-to-relay handshake (preamble channel 1, version 2): XK made hybrid.
    public static let hybridClientRelay = try! NoiseProtocol("Noise_XKhfs" + hybridSuffix)
    /// The relay-to-relay handshake (preamble channel 2, version 1; issue 17 wires it).
    public static let hybridRelayLink = try! NoiseProtocol("Noise_KKhfs" + hybridSuffix)

    public let name: String
    public let pattern: NoisePattern

    /// Each handshake message's length with empty payloads (Valise's): 32 for `e`, a
    /// key's or a KEM field's length plus a 16-byte tag once a cipher key is set, and the
    /// payload's tag. XK: 48, 48, 64; XKhfs: 1248, 1152, 64.
    public var messageLengths: [Int] {
        var hasKey = false
        return pattern.messages.map { tokens in
            var length = 0
            for token in tokens {
                let tag = hasKey ? ChaChaPoly.tagByteCount : 0
                switch token {
                case .e: length += AgreementPublicKey.byteCount
                case .s: length += AgreementPublicKey.byteCount + tag
                case .e1: length += MLKEM768Scheme.parameters.publicKeyByteCount + tag
                case .ekem1:
                    length += MLKEM768Scheme.parameters.ciphertextByteCount + tag
                    hasKey = true
                case .psk, .ee, .es, .se, .ss: hasKey = true
                }
            }
            return length + (hasKey ? ChaChaPoly.tagByteCount : 0)
        }
    }

    public init(_ name: String) throws(NoiseError) {
        guard name.hasPrefix("Noise_") else { throw .unsupported(name) }
        let hybrid = name.hasSuffix(Self.hybridSuffix)
        guard hybrid || name.hasSuffix(Self.suffix) else { throw .unsupported(name) }
        let suffixLength = hybrid ? Self.hybridSuffix.count : Self.suffix.count
        let patternText = name.dropFirst("Noise_".count).dropLast(suffixLength)
        let pattern = try NoisePattern(String(patternText))
        // A KEM is named exactly when the pattern uses one.
        guard pattern.isHybrid == hybrid else { throw .unsupported(name) }
        self.pattern = pattern
        self.name = name
    }
}
