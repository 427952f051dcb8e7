import NIOCore
import ValiseStore

extension RelayConnectionHandler {
    /// What the registries hold: the channel and a way back onto the handler's event loop.
    final class Handle: DroppableConnection, DeliveryTarget {
        let channel: any Channel
        let handler: NIOLoopBound<(RelayConnectionHandler, ChannelHandlerContext)>
        let handoff: LoopHandoff

        init(channel: any Channel, handler: NIOLoopBound<(RelayConnectionHandler, ChannelHandlerContext)>, handoff: LoopHandoff) {
            self.channel = channel
            self.handler = handler
            self.handoff = handoff
        }

        func drop(_ reason: RelayError) {
            let handler = self.handler
            channel.eventLoop.execute {
                let (connection, context) = handler.value
                connection.drop(context, reason)
            }
        }

        func offer(_ envelope: StoredEnvelope) {
            let handler = self.handler
            handoff.execute(on: channel.eventLoop) {
                let (connection, context) = handler.value
                connection.offer(envelope, context: context)
            }
        }

        func wake() {
            let handler = self.handler
            channel.eventLoop.execute {
                let (connection, context) = handler.value
                connection.pump(context)
            }
        }
    }
}
