import Foundation
import Testing

extension MessagingTests {
    /// Found by scripts/faults (network row): a send whose connection was lost after the
    /// message was written to the outbox wrote it again under a second id, so the
    /// recipient was shown the same message twice.
    @Test("a send cut off after any of its frames leaves the message in the outbox once; the recipient shows each once")
    func sendCutAtEveryFrame() throws {
        let story = try Story()
        try story.valise("bob@geneva", ["sync"])
        let relayPort = story.world.relay.port
        var texts: [String] = []
        // From the second frame on: cut after the first, the handshake fails and the send
        // stops before writing anything (an error, exit 5), which loses nothing accepted.
        for frames in 2...12 {
            let cutter = try FrameCutter(to: relayPort, cutAfter: frames)
            defer { cutter.stop() }
            let text = "cut after \(frames) frames"
            texts.append(text)
            let environment = ["VALISE_PASSPHRASE": story.world.passphrase, "VALISE_RECEIPT_DELAY": "0-0"]
            let result = try ValiseCLI.run(["send", "--to", "bob@geneva", text, "--home", story.world.path("alice@jakarta"),
                                            "--relay", "127.0.0.1:\(cutter.port)"], environment: environment)
            #expect(result.status == 0 || result.status == 1, "send cut after \(frames) frames: \(result.stderr)")
            try story.valise("alice@jakarta", ["sync"])
        }
        let sent = try story.sent("alice@jakarta")
        #expect(sent.count == texts.count, "alice's outbox and sent list hold \(sent.count) messages for \(texts.count) sends")
        #expect(sent.allSatisfy { $0["state"] as? String != "waiting" })
        try story.valise("bob@geneva", ["sync"])
        let shown = try story.inbox("bob@geneva").map { try story.read("bob@geneva", $0["id"] as? String ?? "") }
        #expect(shown.sorted() == texts.sorted())
    }
}
