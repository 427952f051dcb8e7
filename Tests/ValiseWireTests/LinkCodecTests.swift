import Foundation
import Testing
import ValiseCrypto
@testable import ValiseWire

@Suite("Relay links: LinkCodec")
struct LinkCodecTests {
    /// A Forward with every field set.
    static var forward: LinkLinkRequest {
        var forward = LinkForward()
        forward.id = Data(1...16)
        forward.recipient = "bob"
        forward.precedence = .flash
        forward.requestedTtl = .week
        forward.ageSeconds = 90
        forward.remainingSeconds = 604_710
        forward.hops = 1
        forward.originDirectoryCount = 12
        forward.originDirectoryHead = Data([0xAA, 0xAA])
        forward.envelope = Data([0, 1])
        var request = LinkLinkRequest()
        request.requestID = 7
        request.forward = forward
        return request
    }

    // Expected bytes made independently by `protoc --encode=valise.link.v1.LinkRequest -I proto
    // proto/valise_link.proto` (and LinkReply) from the same messages in text format.
    @Test("a Forward and a ForwardResult encode as protoc encodes them")
    func knownAnswers() throws {
        #expect(Hex.encode(LinkCodec.encode(Self.forward))
            == "08071a2d0a100102030405060708090a0b0c0d0e0f101203626f6218032003285a30a6f4243801400c4a02aaaa52020001")
        var result = LinkForwardResult()
        result.id = Data([1, 2])
        result.outcome = .temporary
        result.reason = .notHome
        result.homeRelay = "geneva"
        var reply = LinkLinkReply()
        reply.requestID = 7
        reply.forwardResult = result
        #expect(Hex.encode(LinkCodec.encode(reply)) == "08071a100a02010210021803220667656e657661")
    }

    @Test("requests and replies round-trip")
    func roundTrip() throws {
        #expect(try LinkCodec.decodeRequest(LinkCodec.encode(Self.forward)) == Self.forward)
        var hello = LinkLinkHello()
        hello.protocolVersion = LinkCodec.protocolVersion
        hello.relayName = "jakarta"
        hello.directoryCount = 3
        hello.directoryHead = Data(repeating: 9, count: 32)
        var welcome = LinkLinkReply()
        welcome.requestID = 1
        welcome.welcome.protocolVersion = 1
        welcome.welcome.relayName = "hq"
        var request = LinkLinkRequest()
        request.requestID = 1
        request.hello = hello
        #expect(try LinkCodec.decodeRequest(LinkCodec.encode(request)) == request)
        #expect(try LinkCodec.decodeReply(LinkCodec.encode(welcome)) == welcome)
        var error = LinkLinkReply()
        error.requestID = 2
        error.error.code = .directoryFork
        error.error.message = "entry 12 differs"
        #expect(try LinkCodec.decodeReply(LinkCodec.encode(error)).error.code == .directoryFork)
    }

    @Test("undecodable bytes and messages over 1 MiB are refused")
    func refused() {
        #expect(throws: LinkCodec.DecodingError.self) { try LinkCodec.decodeRequest([0x0A, 0xFF]) }
        #expect(throws: LinkCodec.DecodingError.self) { try LinkCodec.decodeReply([0xFF, 0xFF, 0xFF]) }
        var big = LinkLinkRequest()
        big.requestID = 1
        big.directoryPush.entries = [Data(count: LinkCodec.maximumMessageLength)]
        let bytes = LinkCodec.encode(big)
        #expect(bytes.count > LinkCodec.maximumMessageLength)
        #expect(throws: LinkCodec.DecodingError.self) { try LinkCodec.decodeRequest(bytes) }
    }
}
