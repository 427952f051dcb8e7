import Foundation
import Testing

/// What a send or a watch does when the relay is not the right one, or restarts.
extension MessagingTests {
    @Test("send to a relay with another key: non-zero exit, 'kept in the outbox', listed as waiting; the next sync to the right relay sends it")
    func sendToImpostorKeepsTheMessage() throws {
        let story = try Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try story.valise(bob, ["sync"])
        try story.valise(alice, ["sync"])

        // Another relay, with keys of its own: it cannot answer the handshake for the key
        // the directory names.
        let initOther = try ValiseCLI.run(
            ["init", "--dir", story.world.path("other"), "--org-bundle", story.world.path("genesis.bundle"), "--unencrypted-key"], program: "valised")
        #expect(initOther.status == 0, "valised init: \(initOther.stderr)")
        let impostor = try RelayProcess(directory: story.world.path("other"), logPath: story.world.path("other.log"))
        story.relayAddress = impostor.address

        let failed = try story.send(alice, to: bob, "priority", "through the wrong relay", expect: 5)
        #expect(failed.stderr.contains("kept in the outbox; it goes at the next sync"), "\(failed.stderr)")
        let waiting = try story.sent(alice)
        #expect(waiting.count == 1 && waiting.first?["state"] as? String == "waiting", "\(waiting)")
        let status = try story.json(alice, ["status"])
        #expect(status["outboxWaiting"] as? Int == 1, "\(status)")

        // A sync that fails says so too.
        let sync = try story.valise(alice, ["sync"], expect: 5)
        #expect(sync.stderr.contains("1 message kept in the outbox; it goes at the next sync"), "\(sync.stderr)")

        // The right relay: the message goes, and bob reads it.
        story.relayAddress = nil
        try story.valise(alice, ["sync"])
        #expect(try story.sent(alice).first?["state"] as? String == "accepted")
        try story.valise(bob, ["sync"])
        let id = try #require(try story.inbox(bob).first?["id"] as? String)
        #expect(try story.read(bob, id) == "through the wrong relay")
        #expect(impostor.stop() == 0)
    }

    @Test("watch reconnects after the relay restarts normally (SIGTERM): a message sent after the restart is printed by the same watch")
    func watchSurvivesRelayRestart() throws {
        try Self.watchSurvivesRelayRestart(crash: false)
    }

    @Test("watch reconnects after the relay is killed (SIGKILL: the connection drops with no notice) and started again (docs/CLI.md, watch)")
    func watchSurvivesRelayCrash() throws {
        try Self.watchSurvivesRelayRestart(crash: true)
    }

    private static func watchSurvivesRelayRestart(crash: Bool) throws {
        let story = try Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try story.valise(alice, ["sync"])
        try story.valise(bob, ["sync"])
        let output = story.world.path("watch.out")
        let printed = { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        let watcher = try background(
            ["watch", "--json", "--text", "--home", story.world.path(bob), "--relay", story.world.relay.address], output: output,
            environment: ["VALISE_PASSPHRASE": story.world.passphrase])
        defer { watcher.kill() }
        #expect(story.world.eventually(within: 15) { printed().contains("Watching for messages") })

        let port = story.world.relay.port
        if crash {
            story.world.relay.child.kill()
        } else {
            #expect(story.world.relay.stop() == 0)
        }
        story.world.relay = try RelayProcess(directory: story.world.path("relay"), logPath: story.world.path("relay-2.log"), port: port)
        let again = story.world.eventually(within: 30) { printed().components(separatedBy: "Watching for messages").count > 2 }
        #expect(again, "watch did not reconnect (running: \(watcher.isRunning)): \(printed())")

        try story.send(alice, to: bob, "flash", "after the restart")
        #expect(story.world.eventually(within: 15) { printed().contains("after the restart") }, "\(printed())")
        #expect(watcher.isRunning)
    }
}
