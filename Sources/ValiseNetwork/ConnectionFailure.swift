#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// A connection that failed, in words a person can act on: what SwiftNIO and the system
/// report (`NIOConnectionError`, `IOError` with an errno, `ChannelError`) never reaches a
/// message as it is, since its wording names library types and addresses' internals.
public struct ConnectionFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The host answered that nothing listens at that port (ECONNREFUSED).
        case refused
        /// No route to the host or its network.
        case noRoute
        /// The host name does not resolve to an address.
        case doesNotResolve
        /// No answer in time.
        case timedOut
        /// The other end reset the connection.
        case reset
        /// The connection closed before the work was done.
        case closed
        /// Another system error, in the system's words (strerror).
        case system(String)
        /// Something else failed; its details are not for people.
        case other
    }

    public let kind: Kind
    public let host: String
    public let port: Int

    public init(kind: Kind, host: String, port: Int) {
        self.kind = kind
        self.host = host
        self.port = port
    }

    /// Translates an error from connecting to, or talking with, `host:port`.
    public init(_ error: any Error, host: String, port: Int) {
        self.init(kind: Self.kind(of: error), host: host, port: port)
    }

    /// What happened, naming the address: "nothing listens at 127.0.0.1:1".
    public var description: String {
        let address = "\(host):\(port)"
        switch kind {
        case .refused: return "nothing listens at \(address)"
        case .noRoute: return "no route to \(host)"
        case .doesNotResolve: return "\(host) does not resolve"
        case .timedOut: return "\(address) did not answer (timed out)"
        case .reset: return "the connection to \(address) was reset"
        case .closed: return "the connection to \(address) closed"
        case .system(let words): return "cannot connect to \(address): \(words)"
        case .other: return "the connection to \(address) failed"
        }
    }

    /// What to check next, or nil when there is nothing better than trying again.
    public var hint: String? {
        switch kind {
        case .refused: "is valised running?"
        case .noRoute: "check the address and this machine's network"
        case .doesNotResolve: "check the host name and this machine's DNS"
        case .timedOut: "check the address, and that a firewall lets the port through"
        case .reset, .closed, .system, .other: nil
        }
    }

    /// The description and the hint, as one clause of an error line.
    public var sentence: String { hint.map { "\(description); \($0)" } ?? description }

    /// What an error on an open connection means, without an address (the caller's
    /// message names the peer): "the connection was reset".
    public static func words(for error: any Error) -> String {
        switch kind(of: error) {
        case .refused: "the connection was refused"
        case .noRoute: "no route to the host"
        case .doesNotResolve: "the host name does not resolve"
        case .timedOut: "timed out"
        case .reset: "the connection was reset"
        case .closed: "the connection closed"
        case .system(let words): words
        case .other: "an unexpected network error"
        }
    }

    /// The kind of failure an error reports, looking inside NIO's aggregate error.
    public static func kind(of error: any Error) -> Kind {
        switch error {
        case let failure as ConnectionFailure:
            return failure.kind
        case let aggregate as NIOConnectionError:
            // Several addresses may have been tried (IPv4 and IPv6): the first failure of
            // a connection tells more than a failed lookup of the other family.
            // With no attempt at all, the lookups found no address.
            if let first = aggregate.connectionErrors.first { return kind(of: first.error) }
            return .doesNotResolve
        // A failed lookup: the older enum and the struct newer resolvers throw.
        case is SocketAddressError, is SocketAddressError.UnknownHost:
            return .doesNotResolve
        case let io as IOError:
            return kind(errno: io.errnoCode)
        case let channel as ChannelError:
            switch channel {
            case .connectTimeout: return .timedOut
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed: return .closed
            default: return .other
            }
        default:
            return .other
        }
    }

    /// The kind of failure a system error number means.
    public static func kind(errno number: Int32) -> Kind {
        switch number {
        case ECONNREFUSED: .refused
        case EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN: .noRoute
        case ETIMEDOUT: .timedOut
        case ECONNRESET, EPIPE, ECONNABORTED: .reset
        default: .system(String(cString: strerror(number)))
        }
    }
}
