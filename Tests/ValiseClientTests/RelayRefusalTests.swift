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

    @Test("Welcome: the four roles of protocol version 3 are accepted; an unspecified or unknown role closes the connection, never guessed at; NOT_HOME is a refusal the client can follow")
    func roles() {
        for role in [WireWelcome.Role.device, .admin, .revoked, .notHome] {
            var welcome = WireWelcome()
            welcome.role = role
            #expect(throws: Never.self) { try RelayClient.checkRole(welcome) }
        }
        for role in [WireWelcome.Role.unspecified, .UNRECOGNIZED(5)] {
            var welcome = WireWelcome()
            welcome.role = role
            let error = #expect(throws: ClientError.self) { try RelayClient.checkRole(welcome) }
            #expect(error?.code == "relay-protocol")
            #expect(error?.message.contains("a role this client does not know") == true)
        }
        var notHome = WireError()
        notHome.code = .notHome
        notHome.message = "bob@geneva's home relay is hq: connect there"
        #expect(RelayClient.relayError(notHome).code == "relay-notHome")
        #expect(RelayClient.relayError(notHome).message == "the relay refused: bob@geneva's home relay is hq: connect there")
    }
}
