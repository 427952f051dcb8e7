import NIOCore

/// Carries one outgoing link's bytes to its `OutgoingLink`.
final class OutgoingLinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let link: NIOLoopBound<OutgoingLink>

    init(link: NIOLoopBound<OutgoingLink>) {
        self.link = link
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        link.value.received(buffer.readBytes(length: buffer.readableBytes) ?? [])
    }

    func channelInactive(context: ChannelHandlerContext) {
        link.value.closed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
