import Testing
@testable import ValiseClient
import ValiseWire

/// How a relay's `Error` answer becomes the client's error kind, and so its exit status.
@Suite("Relay refusals")
struct RelayRefusalTests {
    @Test("a Hello refused for its protocol version is 'another version' (exit 8), as the VERSION notice is; key refusals are verification; the rest failures")
    func kinds() {
        func kind(_ code: WireErrorCode) -> ClientError.Kind {
            var error = WireError()
            error.code = code
            error.message = "this relay speaks protocol version 3, not 2"
            return RelayClient.relayError(error).kind
        }
        #expect(kind(.unsupportedVersion) == .otherVersion)
        #expect(kind(.notAdmitted) == .verification)
        #expect(kind(.revoked) == .verification)
        #expect(kind(.rateLimited) == .failure)
        #expect(RelayClient.relayError(WireError()).message.hasPrefix("the relay refused: "))
    }
}
