import Foundation
import ValiseCrypto
import ValiseDirectory
import ValiseWire

/// The relay protocol for one admitted connection, without I/O: a client message and the
/// directory as it is now in, what to answer out. The first message must be a Hello; an
/// admin's key may only fetch and publish the directory.
struct RelayRequestProcessor {
    static let protocolVersion: UInt32 = 1
    static let maximumPingData = 64
    /// Answers to a fetch stop growing past this many bytes of entries, well inside a
    /// client's message limit.
    static let maximumFetchBytes = 512 * 1024

    enum Outcome {
        case reply(WireRelayMessage)
        /// Answer, then close the connection.
        case replyAndClose(WireRelayMessage)
        /// Verify and store entries off the event loop, then answer.
        case publish(requestID: UInt64, entries: [[UInt8]], checkpoint: [UInt8])
    }

    let admission: Admission
    let maximumEntriesPerFetch: Int
    private(set) var greeted = false

    init(admission: Admission, maximumEntriesPerFetch: Int) {
        self.admission = admission
        self.maximumEntriesPerFetch = maximumEntriesPerFetch
    }

    mutating func handle(_ bytes: [UInt8], directory: RelayDirectory.Snapshot) -> Outcome {
        let message: WireClientMessage
        do {
            message = try WireCodec.decodeClientMessage(bytes)
        } catch {
            return .replyAndClose(Self.error(0, .badRequest(("the message does not decode as a ClientMessage"))))
        }
        let id = message.requestID
        guard greeted else {
            guard case .hello(let hello) = message.body else {
                return .replyAndClose(Self.error(id, .badRequest("the first message must be a Hello")))
            }
            guard hello.protocolVersion == Self.protocolVersion else {
                return .replyAndClose(Self.error(id, RelayError(
                    .unsupportedVersion, code: "unsupported-version",
                    message: "this relay speaks protocol version \(Self.protocolVersion), not \(hello.protocolVersion)")))
            }
            greeted = true
            var welcome = WireWelcome()
            welcome.protocolVersion = Self.protocolVersion
            welcome.relayName = directory.relayName ?? ""
            welcome.directoryCount = UInt64(directory.count)
            welcome.directoryHead = Data(directory.state.headHash.bytes)
            if case .admin = admission { welcome.role = .admin } else { welcome.role = .device }
            return .reply(Self.message(id, .welcome(welcome)))
        }

        switch message.body {
        case .hello:
            return .replyAndClose(Self.error(id, .badRequest("Hello was already sent")))
        case .ping(let ping):
            guard ping.data.count <= Self.maximumPingData else {
                return .reply(Self.error(id, RelayError(.tooLarge, code: "too-large", message: "ping data is limited to \(Self.maximumPingData) bytes")))
            }
            var pong = WirePong()
            pong.data = ping.data
            return .reply(Self.message(id, .pong(pong)))
        case .directoryFetch(let fetch):
            return .reply(Self.message(id, .directoryEntries(entries(fetch, directory))))
        case .directoryPublish(let publish):
            return .publish(
                requestID: id, entries: publish.entries.map { Array($0) }, checkpoint: Array(publish.checkpoint))
        case nil:
            return .reply(Self.error(id, .badRequest("the message has no request this relay knows")))
        }
    }

    private func entries(_ fetch: WireDirectoryFetch, _ directory: RelayDirectory.Snapshot) -> WireDirectoryEntries {
        var answer = WireDirectoryEntries()
        answer.since = fetch.since
        answer.directoryCount = UInt64(directory.count)
        answer.checkpoint = directory.checkpoint.map { Data($0.encoded()) } ?? Data()
        guard fetch.since < UInt64(directory.count) else { return answer }
        let limit = fetch.limit == 0 ? maximumEntriesPerFetch : min(Int(fetch.limit), maximumEntriesPerFetch)
        var bytes = 0
        for entry in directory.encodedEntries[Int(fetch.since)...].prefix(limit) {
            if bytes + entry.count > Self.maximumFetchBytes && !answer.entries.isEmpty { break }
            bytes += entry.count
            answer.entries.append(Data(entry))
        }
        return answer
    }

    static func published(_ requestID: UInt64, _ result: RelayDirectory.Published) -> WireRelayMessage {
        var published = WireDirectoryPublished()
        published.directoryCount = UInt64(result.count)
        published.directoryHead = Data(result.head.bytes)
        return message(requestID, .directoryPublished(published))
    }

    static func message(_ requestID: UInt64, _ body: WireRelayMessage.OneOf_Body) -> WireRelayMessage {
        var message = WireRelayMessage()
        message.requestID = requestID
        message.body = body
        return message
    }

    static func error(_ requestID: UInt64, _ error: RelayError) -> WireRelayMessage {
        var wire = WireError()
        wire.code = WireErrorCode(rawValue: error.protocolCode.rawValue) ?? .internal
        wire.message = error.message
        return message(requestID, .error(wire))
    }

    static func encode(_ message: WireRelayMessage) -> [UInt8] { WireCodec.encode(message) }
}
