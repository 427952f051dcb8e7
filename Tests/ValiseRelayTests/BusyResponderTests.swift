import NIOCore
import NIOEmbedded
import Testing
@testable import ValiseRelay
import ValiseWire

@Suite("BUSY notice")
struct BusyResponderTests {
    @Test("a refused connection hears BUSY; at most `capacity` linger half-open, the rest are closed at once; a closed one frees its place")
    func lingeringIsBounded() throws {
        let lingering = BusyResponder.Lingering(capacity: 2)
        var channels: [EmbeddedChannel] = []
        for _ in 0..<3 {
            let channel = EmbeddedChannel(handlers: [HalfClose(), BusyResponder(lingering: lingering)])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            channels.append(channel)
        }
        for channel in channels {
            let written = try channel.readOutbound(as: ByteBuffer.self)
            #expect(written.map { Array($0.readableBytesView) } == RelayNotice.busy.bytes, "every refused connection hears BUSY")
        }
        #expect(lingering.current == 2)
        #expect(channels[0].isActive && channels[1].isActive, "the first two linger")
        #expect(!channels[2].isActive, "the third is closed at once")

        _ = try channels[0].finish(acceptAlreadyClosed: true)
        #expect(lingering.current == 1, "a closed lingering connection frees its place")
        let next = EmbeddedChannel(handlers: [HalfClose(), BusyResponder(lingering: lingering)])
        try next.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(next.isActive && lingering.current == 2)
        for channel in [channels[1], next] {
            channel.embeddedEventLoop.advanceTime(by: BusyResponder.linger)
            #expect(!channel.isActive, "a lingering connection closes after the linger")
        }
        #expect(lingering.current == 0)
    }
}

/// EmbeddedChannel cannot half-close: this stands in for the socket's shutdown of its sending
/// half (the channel stays active, as a real one does), and passes a full close on.
private final class HalfClose: ChannelOutboundHandler {
    typealias OutboundIn = Any

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output {
            promise?.succeed()
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}
