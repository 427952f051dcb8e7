import Testing
import ValiseCrypto
@testable import ValiseWire

/// The cleartext preamble and the relay's notices (docs/PROTOCOL.md, "Preamble and the
/// relay's notices"), fed a byte at a time to both state machines.
@Suite("Connection: the preamble, BUSY and VERSION")
struct PreambleTests {
    static let magic: [UInt8] = [0x56, 0x41, 0x4C, 0x49, 0x53, 0x45]

    /// Feeds `bytes` one at a time; every action, in order.
    static func feed(_ relay: inout RelayConnectionState, _ bytes: [UInt8]) -> [RelayConnectionState.Action] {
        bytes.flatMap { relay.receive([$0]) }
    }

    static func feed(_ client: inout ClientConnectionState, _ bytes: [UInt8]) -> [ClientConnectionState.Action] {
        bytes.flatMap { client.receive([$0]) }
    }

    @Test("the bytes on the wire are the ones PROTOCOL.md gives")
    func layout() {
        #expect(Preamble.client.bytes == Self.magic + [1, 2])
        #expect(ValiseTransport.prologue == Array("valise/1".utf8) + Self.magic + [1, 2])
        #expect(ValiseTransport.relayLinkPrologue == Array("valise/link/1".utf8) + Self.magic + [2, 1])
        #expect(ValiseTransport.clientProtocol.name == "Noise_XKhfs_25519+MLKEM768_ChaChaPoly_BLAKE2b")
        #expect(ValiseTransport.clientProtocol.messageLengths == [1248, 1152, 64])
        #expect(ValiseTransport.relayLinkProtocol.messageLengths == [1248, 1152])
        #expect(NoiseProtocol.classicalClientRelay.messageLengths == [48, 48, 64])
        #expect(RelayNotice.busy.bytes == Self.magic + [0x42, 0])
        #expect(RelayNotice.version(1).bytes == Self.magic + [0x56, 1])
        #expect(RelayNotice(parsing: Self.magic + [0x42, 1]) == nil, "BUSY carries 0")
        #expect(RelayNotice(parsing: Self.magic + [0x43, 0]) == nil)
        #expect(Preamble(parsing: Array("VALISF".utf8) + [1, 1]) == nil)
    }

    @Test("the client sends the preamble and frame 1 in one write; the relay, fed a byte at a time, replies only after both")
    func handshakeByteByByte() throws {
        let relayKey = AgreementPrivateKey()
        var client = ClientConnectionState(clientKey: AgreementPrivateKey(), relayKey: relayKey.publicKey, maximumMessageLength: 1 << 20)
        let start = client.start()
        let first = try #require(start.first?.written)
        #expect(start.count == 1 && first.count == 8 + 2 + 1248 && Array(first.prefix(8)) == Preamble.client.bytes)
        var relay = RelayConnectionState(relayKey: relayKey, maximumMessageLength: 1 << 20)
        let before = Self.feed(&relay, Array(first.dropLast()))
        #expect(before.isEmpty, "\(before)")
        #expect(relay.bufferedByteCount == 1249, "the frame's bytes are held, the preamble's consumed")
        let reply = try #require(relay.receive([first.last!]).first?.written)
        #expect(Array(reply.prefix(2)) == [0x04, 0x80], "1152 bytes: a handshake frame's first byte is below 0x56")
        let answer = Self.feed(&client, reply)
        #expect(answer.contains(.established))
    }

    @Test("another magic: the relay closes without a byte after the eighth")
    func notValise() {
        var relay = RelayConnectionState(relayKey: AgreementPrivateKey(), maximumMessageLength: 1 << 20)
        let bytes = Array("GET / HTTP/1.1\r\n".utf8)
        #expect(Self.feed(&relay, Array(bytes.prefix(7))).isEmpty)
        #expect(relay.receive([bytes[7]]) == [.close(.notValise)])
        #expect(relay.receive(Array(bytes.dropFirst(8))) == [])
    }

    @Test("another version or channel: the relay answers VERSION with what it speaks there, then closes", arguments: [
        (UInt8(1), UInt8(1), UInt8(2)), (1, 3, 2), (1, 0, 2), (1, 255, 2), (2, 2, 1), (2, 0, 1), (0, 1, 0), (9, 9, 0),
    ])
    func otherVersion(channel: UInt8, version: UInt8, answered: UInt8) {
        var relay = RelayConnectionState(relayKey: AgreementPrivateKey(), maximumMessageLength: 1 << 20)
        let actions = Self.feed(&relay, Self.magic + [channel, version] + [0x00, 0x30] + [UInt8](repeating: 1, count: 48))
        #expect(actions == [.write(Self.magic + [0x56, answered]), .close(.otherVersion(channel: channel, version: version))])
    }

    @Test("the relay's notices, a byte at a time, end the client's connection with what the relay said")
    func clientReadsNotices() {
        let cases: [([UInt8], ClientConnectionState.Reason)] = [
            (RelayNotice.busy.bytes, .busy),
            (RelayNotice.version(1).bytes, .otherVersion(relay: 1, client: 2)),
            (RelayNotice.version(0).bytes, .otherVersion(relay: 0, client: 2)),
        ]
        for (notice, reason) in cases {
            var client = ClientConnectionState(clientKey: AgreementPrivateKey(), relayKey: AgreementPrivateKey().publicKey, maximumMessageLength: 1 << 20)
            _ = client.start()
            #expect(Self.feed(&client, Array(notice.dropLast())).isEmpty)
            #expect(client.receive([notice.last!]) == [.close(reason)])
            #expect(!client.isEstablished)
        }
        var client = ClientConnectionState(clientKey: AgreementPrivateKey(), relayKey: AgreementPrivateKey().publicKey, maximumMessageLength: 1 << 20)
        _ = client.start()
        let unknown = Self.feed(&client, Self.magic + [0x58, 0])
        #expect(unknown.count == 1 && unknown.first?.closeReason?.contains("protocol violation") == true, "\(unknown)")
    }

    @Test("the preamble is in the prologue: a first message made under the old 8-byte prologue does not decrypt")
    func preambleBound() throws {
        let relayKey = AgreementPrivateKey()
        var handshake = try HandshakeState(
            protocol: ValiseTransport.clientProtocol, role: .initiator, prologue: Array("valise/1".utf8), staticKey: AgreementPrivateKey(), remoteStaticKey: relayKey.publicKey)
        var relay = RelayConnectionState(relayKey: relayKey, maximumMessageLength: 1 << 20)
        let actions = relay.receive(Preamble.client.bytes + FrameDecoder.frame(try handshake.writeMessage(payload: [])))
        #expect(actions == [.close(.unknownPeer)])
    }
}
