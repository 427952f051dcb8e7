import NIOCore

/// Bounds what one connection to the metrics endpoint may send, before any HTTP parsing: a
/// scrape is a few hundred bytes, and past `maximumBytes` the client gets 413 and the
/// connection closes, so a client cannot make the relay buffer headers or a body without end.
final class MetricsRequestLimit: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Request line, headers and body, in all.
    static let defaultMaximumBytes = 8192
    static let tooLarge = Array("HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".utf8)

    private let maximumBytes: Int
    private var received = 0
    private var refused = false

    init(maximumBytes: Int = defaultMaximumBytes) {
        self.maximumBytes = maximumBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        let buffer = unwrapInboundIn(data)
        received += buffer.readableBytes
        guard received <= maximumBytes else {
            refused = true
            // Written from here, in front of the HTTP encoder: the bytes go to the socket as they are.
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: Self.tooLarge))).whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        context.fireChannelRead(data)
    }
}
