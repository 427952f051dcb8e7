import Foundation
import Testing
import ValiseTestSupport

/// Attachments end to end with real `valise` and `valised` processes on one relay: send
/// with files, sync (download and verify before the ack), read, save (never overwriting),
/// and an upload cut mid-way that the next sync resumes.
@Suite("Attachments: send --attach, sync, read, save, resume (real valise and valised)", .serialized)
struct AttachmentTests {
    static let members = ["alice@jakarta", "bob@geneva"]

    let files = TemporaryDirectory()

    /// A file of `count` pseudo-random bytes (different for each seed).
    func file(_ name: String, count: Int, seed: UInt64) throws -> (path: String, bytes: [UInt8]) {
        var state = seed &* 6_364_136_223_846_793_005 &+ 1
        var bytes = [UInt8](repeating: 0, count: count)
        for index in bytes.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
        }
        let path = files.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, bytes)
    }

    func contents(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    func spool(_ story: MessagingTests.Story, _ member: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: story.world.path(member) + "/spool")) ?? []
    }

    @Test("a 3 MiB file and a small one reach bob; read lists them; save writes both once")
    func sendReadSave() throws {
        let story = try MessagingTests.Story(members: Self.members)
        try story.valise("bob@geneva", ["sync"])
        let big = try file("note-verbale.pdf", count: 3 << 20, seed: 1)
        let small = try file("annex.txt", count: 1_000, seed: 2)
        let sent = try story.valise("alice@jakarta", ["send", "--to", "bob@geneva", "--attach", big.path, "--attach", small.path, "With annexes"])
        #expect(sent.stdout.contains("the relay has it"), "\(sent.stdout)")
        #expect(spool(story, "alice@jakarta").isEmpty, "the spool keeps \(spool(story, "alice@jakarta"))")

        try story.valise("bob@geneva", ["sync"])
        let id = try #require(try story.inbox("bob@geneva").first?["id"] as? String)
        let read = try story.json("bob@geneva", ["read", id], connect: false)
        #expect(read["text"] as? String == "With annexes")
        let listed = try #require(read["attachments"] as? [[String: Any]])
        #expect(listed.map { $0["name"] as? String } == ["note-verbale.pdf", "annex.txt"])
        #expect(listed.map { $0["size"] as? Int } == [3 << 20, 1_000])
        #expect(listed.map { $0["state"] as? String } == ["stored", "stored"])
        #expect(listed.first?["media_type"] as? String == "application/pdf")
        let text = try story.valise("bob@geneva", ["read", id], connect: false).stdout
        #expect(text.contains("Attachments:") && text.contains("note-verbale.pdf") && text.contains("3.0 MiB"), "\(text)")

        let out = files.file("saved")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        try story.valise("bob@geneva", ["save", id, "--out", out], connect: false)
        #expect(try contents(out + "/note-verbale.pdf") == big.bytes)
        #expect(try contents(out + "/annex.txt") == small.bytes)
        #expect(mode(of: out + "/note-verbale.pdf") == 0o600)
        let again = try story.valise("bob@geneva", ["save", id, "--out", out], expect: 1, connect: false)
        #expect(again.stderr.contains("exists; nothing was written"), "\(again.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["annex.txt", "note-verbale.pdf"])
        #expect(try contents(out + "/annex.txt") == small.bytes)
    }

    @Test("a file over the relay's queue.maxBlobBytes is not uploaded: the send says so and the message waits in the outbox")
    func overTheRelaysLimit() throws {
        let story = try MessagingTests.Story(members: Self.members, relayEnvironment: ["VALISED_QUEUE_MAX_BLOB_BYTES": "100000"])
        try story.valise("bob@geneva", ["sync"])
        let big = try file("large.pdf", count: 200_000, seed: 4)
        let result = try story.valise("alice@jakarta", ["send", "--to", "bob@geneva", "--attach", big.path, "Too large"])
        #expect(result.stderr.contains("the relay takes attachments of at most"), "\(result.stderr)")
        #expect(result.stdout.contains("waits in the outbox"), "\(result.stdout)")
        #expect(try story.sent("alice@jakarta").map { $0["state"] as? String } == ["waiting"])
        #expect(spool(story, "alice@jakarta").count == 1)
        try story.valise("bob@geneva", ["sync"])
        #expect(try story.inbox("bob@geneva").isEmpty)
    }

    @Test("an upload cut mid-way stays in the outbox and the next sync resumes it; bob gets the file whole")
    func resumeAfterCut() throws {
        let story = try MessagingTests.Story(members: Self.members)
        try story.valise("bob@geneva", ["sync"])
        try story.valise("alice@jakarta", ["sync"])
        let big = try file("scan.pdf", count: 6 << 20, seed: 3)
        let environment = ["VALISE_PASSPHRASE": story.world.passphrase, "VALISE_RECEIPT_DELAY": "0-0"]
        // Cut after more and more of alice's frames until a send stops inside the upload:
        // its blob is still in the spool and its message waits.
        var cutInside = false
        for frames in stride(from: 20, through: 200, by: 20) where !cutInside {
            let cutter = try FrameCutter(to: story.world.relay.port, cutAfter: frames)
            defer { cutter.stop() }
            let result = try ValiseCLI.run(
                ["send", "--to", "bob@geneva", "--attach", big.path, "cut after \(frames) frames", "--home", story.world.path("alice@jakarta"),
                 "--relay", "127.0.0.1:\(cutter.port)"], environment: environment)
            #expect(result.status == 0 || result.status == 1, "send cut after \(frames) frames: \(result.stderr)")
            cutInside = !spool(story, "alice@jakarta").isEmpty
            if !cutInside { try story.valise("alice@jakarta", ["sync"]) }
        }
        #expect(cutInside, "no cut fell inside the upload")
        try story.valise("alice@jakarta", ["sync"])
        #expect(spool(story, "alice@jakarta").isEmpty)
        #expect(try story.sent("alice@jakarta").allSatisfy { $0["state"] as? String != "waiting" })
        try story.valise("bob@geneva", ["sync"])
        let out = files.file("saved")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        for message in try story.inbox("bob@geneva") {
            let id = try #require(message["id"] as? String)
            let listed = try story.json("bob@geneva", ["read", id], connect: false)["attachments"] as? [[String: Any]] ?? []
            #expect(listed.map { $0["state"] as? String } == ["stored"])
        }
        let last = try #require(try story.inbox("bob@geneva").last?["id"] as? String)
        try story.valise("bob@geneva", ["save", last, "--out", out], connect: false)
        #expect(try contents(out + "/scan.pdf") == big.bytes)
    }
}
