import Foundation
import Testing

/// Every file Valise makes is readable by its owner only, whatever the umask it was started
/// with (the tests' own umask is usually 022), and read-only commands refuse a home other
/// users can enter.
@Suite("File modes: what valise and valised create is private (real processes)", .serialized)
struct FileModeTests {
    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int
    }

    static func octal(_ mode: Int?) -> String { mode.map { String($0, radix: 8) } ?? "missing" }

    @Test("messages.sqlite and its -wal and -shm are 0600, after a sync and while a watch holds them open")
    func messageStore() throws {
        let story = try MessagingTests.Story()
        let bob = "bob@geneva"
        let home = story.world.path(bob)
        try story.valise(bob, ["sync"])
        #expect(Self.mode(home + "/messages.sqlite") == 0o600, "after a sync: \(Self.octal(Self.mode(home + "/messages.sqlite")))")

        // A watch keeps the store open, so its write-ahead log and shared memory exist.
        let output = story.world.path("watch.out")
        let watcher = try MessagingTests.background(
            ["watch", "--home", home, "--relay", story.world.relay.address], output: output,
            environment: ["VALISE_PASSPHRASE": story.world.passphrase])
        defer { watcher.kill() }
        let watching = story.world.eventually(within: 15) { ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("Watching for messages") }
        #expect(watching, "\((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        for name in ["messages.sqlite", "messages.sqlite-wal", "messages.sqlite-shm"] {
            let mode = Self.mode(home + "/" + name)
            #expect(mode == 0o600, "\(name): \(Self.octal(mode))")
        }
        #expect(Self.mode(home) == 0o700)
    }

    @Test("a running relay's queue.sqlite (with -wal, -shm) and limits.json are 0600")
    func relayFiles() throws {
        let world = try RelayWorld(members: ["alice@jakarta"])
        _ = try world.sync("alice@jakarta")
        let directory = world.path("relay")
        #expect(world.eventually(within: 10) { FileManager.default.fileExists(atPath: directory + "/limits.json") })
        for name in ["queue.sqlite", "queue.sqlite-wal", "queue.sqlite-shm", "limits.json"] {
            let mode = Self.mode(directory + "/" + name)
            #expect(mode == 0o600, "\(name): \(Self.octal(mode))")
        }
        #expect(world.relay.isRunning)
    }

    @Test("inbox, read, sent and status refuse a home that other users can enter, as sync and send do")
    func readOnlyCommandsCheckTheHome() throws {
        let story = try MessagingTests.Story()
        let (alice, bob) = ("alice@jakarta", "bob@geneva")
        try story.valise(bob, ["sync"])
        try story.valise(alice, ["sync"])
        try story.send(alice, to: bob, "routine", "a note")
        try story.valise(bob, ["sync"])
        let id = try #require(try story.inbox(bob).first?["id"] as? String)
        let home = story.world.path(bob)
        #expect(chmod(home, 0o750) == 0)
        defer { chmod(home, 0o700) }
        for command in [["inbox"], ["read", id], ["sent"], ["status"]] {
            let connect = command == ["status"]
            let result = try story.valise(bob, command, expect: 1, connect: connect)
            #expect(result.stderr.contains("can be accessed by other users") && result.stderr.contains("chmod 700"), "\(command[0]): \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(command[0]) printed: \(result.stdout)")
        }
        // As sync does.
        let sync = try story.valise(bob, ["sync"], expect: 1)
        #expect(sync.stderr.contains("can be accessed by other users"), "\(sync.stderr)")
    }
}
