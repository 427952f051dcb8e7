import NIOCore

/// A handler whose writes wait for one flush at the end of this event-loop tick, so that a
/// commit's worth of answers costs one system call: the client connection's handler and an
/// incoming relay link's share this.
protocol FlushBatching: AnyObject, SendableMetatype {
    /// Whether a flush is already scheduled for this tick (event loop only).
    var flushScheduled: Bool { get set }
}

extension FlushBatching {
    func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.flushScheduled = false
            context.flush()
        }
    }
}
