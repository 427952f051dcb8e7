import Foundation
import Testing
import ValiseTestSupport

/// Issue 20: a circular to more than 20 members is confirmed at a terminal first; `--yes`
/// and a command that is not at a terminal (a script) do not ask.
@Suite("Circulars: confirmation above 20 members at a terminal (real valise and valised)", .serialized)
struct CircularConfirmationTests {
    @Test("at a terminal, a circular to 21 members asks first: 'n' writes nothing (exit 64), 'y' sends to all; a script is not asked")
    func confirmation() throws {
        let story = try MessagingTests.Story(members: ["alice@jakarta"] + (1...21).map { "m\($0)@geneva" })
        try story.valise("alice@jakarta", ["sync"])
        let arguments = ["send", "--to", "mission:geneva", "The national day reception is on 14 July.",
                         "--home", story.world.path("alice@jakarta"), "--relay", story.world.relay.address]
        let environment = ["VALISE_PASSPHRASE": story.world.passphrase, "VALISE_RECEIPT_DELAY": "0-0"]

        let declined = try TerminalSession(arguments, environment: environment)
        #expect(declined.waitFor("Send it to all 21 of them? [y/N] "), "\(declined.transcript)")
        declined.type("n")
        #expect(declined.finish() == 64, "\(declined.transcript)")
        #expect(declined.transcript.contains("Circular to 21 members (mission:geneva)."))
        #expect(declined.transcript.contains("not sent: the circular was not confirmed; nothing was written"))
        #expect(try story.sent("alice@jakarta").isEmpty, "a declined circular left something in the outbox")

        let confirmed = try TerminalSession(arguments, environment: environment)
        #expect(confirmed.waitFor("Send it to all 21 of them? [y/N] "), "\(confirmed.transcript)")
        confirmed.type("y")
        #expect(confirmed.finish() == 0, "\(confirmed.transcript)")
        let sent = try story.sent("alice@jakarta")
        let circulars = Set(sent.compactMap { $0["circular"] as? String })
        #expect(sent.count == 21 && circulars.count == 1 && sent.allSatisfy { $0["circular"] != nil }, "\(sent.count) sent, circular ids \(circulars)")

        // Not at a terminal (standard error is a pipe here): sent without a question.
        let scripted = try story.valise("alice@jakarta", ["send", "--to", "mission:geneva", "A second circular."])
        #expect(!(scripted.stdout + scripted.stderr).contains("[y/N]"))
        #expect(try story.sent("alice@jakarta").count == 42)
    }
}
