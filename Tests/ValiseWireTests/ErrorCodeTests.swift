import Foundation
import SwiftProtobuf
import Testing
@testable import ValiseWire

/// The relay protocol's error codes as protoc-gen-swift would have generated them: the
/// generated code is edited by hand when a code is added (docs/PROTOCOL.md, "Relay protocol").
@Suite("Wire: error codes")
struct ErrorCodeTests {
    @Test("UNAVAILABLE is code 18: its bytes decode to it, and its JSON and text names round-trip")
    func unavailable() throws {
        // Error{code: 18}: field 1, varint 18.
        let decoded = try WireError(serializedBytes: [0x08, 0x12])
        #expect(decoded.code == .unavailable)
        #expect(WireErrorCode(rawValue: 18) == .unavailable)
        #expect(WireErrorCode.unavailable.rawValue == 18)
        #expect(WireErrorCode.allCases.last == .unavailable)
        #expect(try decoded.serializedBytes() as [UInt8] == [0x08, 0x12])

        var relay = WireRelayMessage()
        relay.body = .error(decoded)
        #expect(try WireCodec.decodeRelayMessage(WireCodec.encode(relay)) == relay)

        let json = try decoded.jsonString()
        #expect(json == #"{"code":"ERROR_CODE_UNAVAILABLE"}"#)
        #expect(try WireError(jsonString: json) == decoded)
        let text = decoded.textFormatString()
        #expect(text == "code: ERROR_CODE_UNAVAILABLE\n")
        #expect(try WireError(textFormatString: text) == decoded)
        // The code before it is unchanged, and the next is still unknown.
        #expect(try WireError(jsonString: #"{"code":"ERROR_CODE_NOT_HOME"}"#).code == .notHome)
        #expect(try WireError(serializedBytes: [0x08, 0x13]).code == .UNRECOGNIZED(19))
    }
}
