import NIOConcurrencyHelpers
import NIOCore
import ValiseWire

/// A connection the limits refused: it gets the cleartext BUSY notice at once (before
/// anything is read, so a refused connection costs no more than its accept), its sending
/// half is closed, and what the client still sends is read and dropped until it closes or
/// `linger` passes. Closing with the client's bytes unread would reset the connection, and
/// the reset can destroy the notice before the client reads it.
///
/// Refused connections are not counted by the connection limits (they are what the limits
/// refused), so the lingering ones are bounded on their own (`Lingering`): past the bound a
/// refused connection gets the notice and is closed at once, so a flood of connections from
/// many addresses cannot hold the relay's file descriptors open.
final class BusyResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long a refused connection may stay half-open, at most.
    static let linger = TimeAmount.seconds(Int64(1))

    /// How many refused connections may linger at once, relay-wide.
    final class Lingering: Sendable {
        let capacity: Int
        private let count = NIOLockedValueBox(0)

        init(capacity: Int = 256) {
            self.capacity = capacity
        }

        var current: Int { count.withLockedValue { $0 } }

        func enter() -> Bool {
            count.withLockedValue { count in
                guard count < capacity else { return false }
                count += 1
                return true
            }
        }

        func leave() {
            count.withLockedValue { $0 -= 1 }
        }
    }

    private let lingering: Lingering
    private var entered = false
    private var timer: Scheduled<Void>?

    init(lingering: Lingering) {
        self.lingering = lingering
    }

    func channelActive(context: ChannelHandlerContext) {
        let notice = context.channel.allocator.buffer(bytes: RelayNotice.busy.bytes)
        guard lingering.enter() else {
            context.writeAndFlush(wrapOutboundOut(notice), promise: nil)
            context.close(promise: nil)
            context.fireChannelActive()
            return
        }
        entered = true
        context.writeAndFlush(wrapOutboundOut(notice), promise: nil)
        context.close(mode: .output, promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: Self.linger) { loopBound.value.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        if entered {
            entered = false
            lingering.leave()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
