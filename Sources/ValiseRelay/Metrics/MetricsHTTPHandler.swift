import NIOCore
import NIOHTTP1

/// Answers one HTTP/1 request on the metrics endpoint: `GET /metrics` gets the text
/// exposition format 0.0.4; another path 404, another method on /metrics 405. Every
/// answer closes the connection (a scraper opens one per scrape), so a connection costs
/// one bounded request. The body is produced off the event loop by `render`.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The exposition, produced for a request on `loop` (its future completes on any thread).
    typealias Render = @Sendable (_ loop: any EventLoop) -> EventLoopFuture<[UInt8]>

    static let path = "/metrics"
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private enum Answer {
        case metrics
        case notFound
        case methodNotAllowed
    }

    private let render: Render
    private var answer: Answer?
    private var answered = false

    init(render: @escaping Render) {
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard answer == nil, !answered else { return }
            let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            answer = path != Self.path ? .notFound : head.method == .GET ? .metrics : .methodNotAllowed
        case .body:
            // Bounded by MetricsRequestLimit before the decoder; a scrape has no body anyway.
            break
        case .end:
            guard let answer, !answered else { return }
            answered = true
            respond(to: answer, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(to answer: Answer, context: ChannelHandlerContext) {
        switch answer {
        case .notFound:
            send(.notFound, body: Array("not found: the metrics are at \(Self.path)\n".utf8), context: context)
        case .methodNotAllowed:
            send(.methodNotAllowed, body: Array("only GET\n".utf8), extra: [("allow", "GET")], context: context)
        case .metrics:
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            render(context.eventLoop).hop(to: context.eventLoop).whenComplete { result in
                let (handler, context) = loopBound.value
                switch result {
                case .success(let body):
                    handler.send(.ok, body: body, contentType: Self.contentType, context: context)
                case .failure:
                    handler.send(.serviceUnavailable, body: Array("the relay is shutting down\n".utf8), context: context)
                }
            }
        }
    }

    private func send(
        _ status: HTTPResponseStatus, body: [UInt8], contentType: String = "text/plain; charset=utf-8", extra: [(String, String)] = [],
        context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders([("content-type", contentType), ("content-length", "\(body.count)"), ("connection", "close")])
        headers.add(contentsOf: extra)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
