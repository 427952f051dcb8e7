/// The 8 cleartext bytes a client sends before its first Noise message (docs/PROTOCOL.md,
/// "Transport"): `"VALISE"` ‖ u8 channel ‖ u8 version. They let a relay that speaks another
/// version say so, and they are hashed into the Noise prologue, so a preamble changed in
/// flight fails the handshake.
public struct Preamble: Equatable, Sendable {
    /// What a connection is for.
    public enum Channel: UInt8, Sendable {
        /// A device or an admin talking to its relay.
        case client = 1
        /// One relay talking to another (docs/PROTOCOL.md, "Relay links").
        case relayLink = 2
    }

    /// ASCII `VALISE`: the first six bytes of a preamble and of a relay's notice.
    public static let magic: [UInt8] = Array("VALISE".utf8)
    public static let byteCount = 8

    public let channel: UInt8
    public let version: UInt8

    public init(channel: UInt8, version: UInt8) {
        self.channel = channel
        self.version = version
    }

    public init(_ channel: Channel, version: UInt8) {
        self.init(channel: channel.rawValue, version: version)
    }

    /// The preamble of a client of this build.
    public static let client = Preamble(.client, version: ValiseTransport.clientVersion)
    /// The preamble of a relay link: the initiator sends it, then its static key.
    public static let relayLink = Preamble(.relayLink, version: ValiseTransport.relayLinkVersion)

    public var bytes: [UInt8] { Self.magic + [channel, version] }

    /// The Noise prologue of a client channel with this preamble: `valise/1` ‖ the
    /// preamble's 8 bytes (a relay link's is `ValiseTransport.relayLinkPrologue`).
    public var prologue: [UInt8] { ValiseTransport.prologueLabel + bytes }

    /// Moves bytes from the front of `input` into `held` until it has 8 (a preamble or a
    /// notice arriving in pieces); whether it has them all now.
    static func fill(_ held: inout [UInt8], from input: inout ArraySlice<UInt8>) -> Bool {
        let taken = input.prefix(byteCount - held.count)
        held += taken
        input = input.dropFirst(taken.count)
        return held.count == byteCount
    }

    /// Parses exactly 8 bytes; nil when they do not start with the magic (not a Valise
    /// client: the relay closes without a byte).
    public init?(parsing bytes: [UInt8]) {
        guard bytes.count == Self.byteCount, Array(bytes.prefix(Self.magic.count)) == Self.magic else { return nil }
        self.init(channel: bytes[6], version: bytes[7])
    }
}

/// What a relay says in cleartext, instead of its handshake reply, when it will not go on;
/// it closes right after. Unauthenticated: an active attacker can forge either, so a client
/// reports them and never treats them as proof of anything, nor falls back to another version.
public enum RelayNotice: Equatable, Sendable {
    /// At its connection limits (in all, from this address, or the handshake rate).
    case busy
    /// It speaks `version` on the channel asked for (0: it does not serve that channel).
    case version(UInt8)

    public static let busyCode = UInt8(ascii: "B")
    public static let versionCode = UInt8(ascii: "V")

    public var bytes: [UInt8] {
        switch self {
        case .busy: Preamble.magic + [Self.busyCode, 0]
        case .version(let version): Preamble.magic + [Self.versionCode, version]
        }
    }

    /// Parses exactly 8 bytes; nil for anything else (another code is a protocol violation).
    public init?(parsing bytes: [UInt8]) {
        guard bytes.count == Preamble.byteCount, Array(bytes.prefix(Preamble.magic.count)) == Preamble.magic else { return nil }
        switch bytes[6] {
        case Self.busyCode where bytes[7] == 0: self = .busy
        case Self.versionCode: self = .version(bytes[7])
        default: return nil
        }
    }
}
