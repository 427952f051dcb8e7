import Foundation
import Testing
import ValiseCrypto
import ValiseTestSupport

/// Issue 20: a terminal shows progress (bytes, rate, time left) on stderr for transfers over
/// 1 MiB; `--json` and a command that is not at a terminal show none.
@Suite("Attachments: the progress line at a terminal (real valise and valised)", .serialized)
struct TransferProgressTests {
    @Test("a 3 MiB attachment: a terminal shows encrypting, uploading and downloading; --json and a script show nothing of it")
    func progress() throws {
        let story = try MessagingTests.Story(members: ["alice@jakarta", "bob@jakarta"])
        for member in ["alice@jakarta", "bob@jakarta"] { try story.valise(member, ["sync"]) }
        let file = story.world.path("annex.bin")
        try Data(Random.bytes(count: 3 << 20)).write(to: URL(fileURLWithPath: file))
        let environment = ["VALISE_PASSPHRASE": story.world.passphrase, "VALISE_RECEIPT_DELAY": "0-0"]
        func home(_ member: String) -> [String] { ["--home", story.world.path(member), "--relay", story.world.relay.address] }

        let send = try TerminalSession(["send", "--to", "bob@jakarta", "--attach", file, "The annex."] + home("alice@jakarta"), environment: environment)
        #expect(send.finish() == 0, "\(send.transcript)")
        #expect(send.transcript.contains("Encrypting ") && send.transcript.contains("Uploading "), "\(send.transcript)")
        #expect(send.transcript.contains(" of ") && send.transcript.contains("/s"), "bytes and rate: \(send.transcript)")

        let sync = try TerminalSession(["sync"] + home("bob@jakarta"), environment: environment)
        #expect(sync.finish() == 0, "\(sync.transcript)")
        #expect(sync.transcript.contains("Downloading "), "\(sync.transcript)")

        let quiet = try TerminalSession(["send", "--to", "bob@jakarta", "--attach", file, "--json", "Again."] + home("alice@jakarta"), environment: environment)
        #expect(quiet.finish() == 0, "\(quiet.transcript)")
        #expect(!quiet.transcript.contains("Uploading") && !quiet.transcript.contains("Encrypting"), "--json: \(quiet.transcript)")

        let scripted = try story.valise("alice@jakarta", ["send", "--to", "bob@jakarta", "--attach", file, "Once more."])
        #expect(!scripted.stderr.contains("Uploading") && !scripted.stderr.contains("Encrypting"), "not a terminal: \(scripted.stderr)")
    }
}
