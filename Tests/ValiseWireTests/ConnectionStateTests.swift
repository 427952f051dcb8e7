import Testing
import ValiseTestSupport
import ValiseCrypto
@testable import ValiseWire

@Suite("Connection: relay and client state machines talking in memory")
struct ConnectionStateTests {
    static func text(_ string: String) -> [UInt8] { Array(string.utf8) }

    /// Large messages one byte at a time are slow in a debug build; one test does that.
    func isOneByte(_ chunking: Chunking) -> Bool {
        if case .oneByte = chunking { true } else { false }
    }

    @Test("the handshake completes and the relay asks to authenticate the client's static key", arguments: Chunking.all)
    func handshake(chunking: Chunking) throws {
        var link = Link(chunking: chunking)
        link.start()
        #expect(link.clientLog.count == 1)
        #expect(link.clientLog.first?.written?.count == 8 + 2 + 1248, "the preamble, then e, the encrypted ML-KEM key and an empty payload's tag")
        link.pump()

        #expect(link.relayEvents == [.authenticate(link.clientKey.publicKey)])
        #expect(link.relayLog.compactMap(\.written).map(\.count) == [2 + 1152], "one reply: e, the encrypted ML-KEM ciphertext and a tag")
        #expect(link.clientLog.compactMap(\.written).map(\.count) == [8 + 2 + 1248, 2 + 64], "the third message: s and a tag")
        #expect(link.clientLog.last == .established)
        #expect(link.client.isEstablished)
        #expect(!link.relay.isEstablished, "awaiting the admission decision")
        #expect(!link.relay.isClosed && link.relayCloses.isEmpty && link.clientCloses.isEmpty)
        #expect(link.relay.bufferedByteCount == 0)

        link.admit()
        #expect(link.relay.isEstablished)
        #expect(link.relayDelivered.isEmpty, "nothing was sent before admission")
    }

    @Test("messages sent before admit() are held, then delivered in order", arguments: Chunking.all)
    func bufferedBeforeAdmission(chunking: Chunking) throws {
        var link = Link(chunking: chunking)
        link.handshake()
        var rng = SplitMix64(seed: 8)
        let early = [[], Self.text("one"), rng.bytes(isOneByte(chunking) ? 3_000 : 200_000), Self.text("three")]
        for message in early { link.clientSends(message) }
        link.pump()
        #expect(link.relayDelivered.isEmpty)
        #expect(link.relayEvents == [.authenticate(link.clientKey.publicKey)])

        link.admit()
        #expect(link.relayDelivered == early)
        link.clientSends(Self.text("after"))
        link.pump()
        #expect(link.relayDelivered == early + [Self.text("after")])
        #expect(link.relayCloses.isEmpty && link.clientCloses.isEmpty)
    }

    @Test("the handshake's last message and early messages arrive in one piece")
    func earlyMessagesWithThirdHandshakeMessage() throws {
        var link = Link()
        link.start()
        link.fromRelay(link.relay.receive(link.toRelay.take(link.toRelay.count)))
        // The relay's reply reaches the client; the client answers and sends at once.
        link.fromClient(link.client.receive(link.toClient.take(link.toClient.count)))
        link.clientSends(Self.text("first"))
        link.clientSends(Self.text("second"))
        let actions = link.relay.receive(link.toRelay.take(link.toRelay.count))
        #expect(actions == [.authenticate(link.clientKey.publicKey)])
        #expect(link.relay.admit() == [.deliver(Self.text("first")), .deliver(Self.text("second"))])
    }

    @Test("exactly maximumBufferedBeforeAdmission early messages are fine; one more closes")
    func tooManyBeforeAdmission() throws {
        let limit = RelayConnectionState.maximumBufferedBeforeAdmission
        #expect(limit == 8)

        var atLimit = Link(chunking: .random(seed: 3, maximum: 50))
        atLimit.handshake()
        for index in 0..<limit { atLimit.clientSends([UInt8(index)]) }
        atLimit.pump()
        #expect(atLimit.relayCloses.isEmpty)
        atLimit.admit()
        #expect(atLimit.relayDelivered == (0..<limit).map { [UInt8($0)] })

        var over = Link(chunking: .random(seed: 4, maximum: 50))
        over.handshake()
        for index in 0...limit { over.clientSends([UInt8(index)]) }
        over.pump()
        #expect(over.relayCloses.count == 1)
        #expect(over.relayCloses.first?.isProtocolViolation == true)
        #expect(over.relay.isClosed)
        #expect(over.relay.admit() == [], "nothing held is delivered after the close")
        #expect(over.relayDelivered.isEmpty)
    }

    @Test("the relay's messages reach the client after admission", arguments: Chunking.all)
    func relayToClient(chunking: Chunking) throws {
        var link = Link(chunking: chunking)
        link.handshake()
        #expect(link.relay.send(Self.text("too early")) == [], "the relay says nothing before admission")
        link.admit()
        var rng = SplitMix64(seed: 6)
        let messages = [Self.text("welcome"), [], rng.bytes(isOneByte(chunking) ? 3_000 : 65_519), Self.text("bye")]
        for message in messages { link.relaySends(message) }
        link.pump()
        #expect(link.clientDelivered == messages)
        #expect(link.relayCloses.isEmpty && link.clientCloses.isEmpty)
    }

    @Test("refuse(with:) sends one message the client receives, then closes as refused")
    func refuse() throws {
        var link = Link(chunking: .random(seed: 5, maximum: 9))
        link.handshake()
        link.clientSends(Self.text("let me in"))
        link.pump()
        let actions = link.relay.refuse(with: Self.text("not in the directory"))
        #expect(actions.count == 2)
        #expect(actions.first?.isWrite == true)
        #expect(actions.last == .close(.refused))
        link.fromRelay(actions)
        link.pump()
        #expect(link.clientDelivered == [Self.text("not in the directory")])
        #expect(link.relayDelivered.isEmpty, "what the refused client sent is never delivered")
        #expect(link.relay.isClosed)
        #expect(link.clientCloses.isEmpty, "the client learns of the close from the transport")
    }

    @Test("after the relay closes, receive, send and admit return nothing")
    func relayAfterClose() throws {
        var link = Link()
        link.handshake()
        link.fromRelay(link.relay.refuse(with: Self.text("no")))
        #expect(link.relay.isClosed)
        link.clientSends(Self.text("still there?"))
        #expect(link.relay.receive(link.toRelay.take(link.toRelay.count)) == [])
        #expect(link.relay.receive([0, 0]) == [], "not even a malformed frame gets a reaction")
        #expect(link.relay.send(Self.text("x")) == [])
        #expect(link.relay.admit() == [])
        #expect(link.relay.bufferedByteCount == 0, "nothing is buffered after the close")
    }

    @Test("after close, refuse(with:) and sendAndClose return nothing either")
    func relayCloseIsFinal() throws {
        var link = Link()
        link.handshake()
        link.fromRelay(link.relay.refuse(with: Self.text("no")))
        #expect(link.relay.isClosed)
        #expect(link.relay.refuse(with: Self.text("again")) == [])
        #expect(link.relay.sendAndClose(Self.text("bye")) == [])
    }

    @Test("after the client closes, receive, send and start return nothing")
    func clientAfterClose() throws {
        var link = Link()
        link.handshake()
        link.admit()
        let actions = link.client.receive([0, 0])
        #expect(actions.count == 1 && actions.first?.closeReason != nil)
        #expect(link.client.receive(FrameDecoder.frame([1, 2, 3])) == [])
        #expect(link.client.send(Self.text("x")) == [])
        #expect(link.client.start() == [])
        #expect(!link.client.isEstablished)
    }

    @Test("sendAndClose delivers its message, then closes", arguments: [Chunking.whole, .oneByte])
    func sendAndClose(chunking: Chunking) throws {
        var link = Link(chunking: chunking)
        link.handshake()
        link.admit()
        link.relaySends(Self.text("before"))
        let actions = link.relay.sendAndClose(Self.text("your key was revoked"))
        #expect(actions.count == 2)
        #expect(actions.first?.isWrite == true)
        #expect(actions.last == .close(.closedByRelay))
        link.fromRelay(actions)
        link.pump()
        #expect(link.clientDelivered == [Self.text("before"), Self.text("your key was revoked")])
        #expect(link.relay.isClosed)
        #expect(link.relay.send(Self.text("x")) == [])
    }

    @Test("the client cannot send before its handshake is complete")
    func clientSendsTooEarly() throws {
        var link = Link()
        #expect(link.client.send(Self.text("early")) == [])
        link.start()
        #expect(link.client.send(Self.text("early")) == [])
        #expect(!link.client.isEstablished)
        link.pump()
        link.admit()
        #expect(link.relayDelivered.isEmpty)
    }

    @Test("a two-fragment message each way, one byte at a time")
    func largeMessagesOneByteAtATime() throws {
        var link = Link(chunking: .oneByte)
        link.handshake()
        var rng = SplitMix64(seed: 10)
        let up = rng.bytes(70_000)
        let down = rng.bytes(65_519)
        link.clientSends(up)
        link.pump()
        link.admit()
        link.relaySends(down)
        link.pump()
        #expect(link.relayDelivered == [up])
        #expect(link.clientDelivered == [down])
        #expect(link.relay.bufferedByteCount == 0)
    }
}
