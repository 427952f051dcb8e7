import NIOCore
import ValiseWire

/// A connection the limits refused: it gets the cleartext BUSY notice at once (before
/// anything is read, so a refused connection costs no more than its accept), its sending
/// half is closed, and what the client still sends is read and dropped until it closes or
/// `linger` passes. Closing with the client's bytes unread would reset the connection, and
/// the reset can destroy the notice before the client reads it.
final class BusyResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long a refused connection may stay half-open, at most.
    static let linger = TimeAmount.seconds(Int64(1))

    private var timer: Scheduled<Void>?

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: RelayNotice.busy.bytes)), promise: nil)
        context.close(mode: .output, promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: Self.linger) { loopBound.value.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
