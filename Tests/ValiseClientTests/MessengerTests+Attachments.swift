import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseClient
import ValiseCrypto
import ValiseSession
import ValiseStore

/// A message with a file through the outbox and the inbox, the relay's part played in
/// memory: it is not encrypted before its blob is uploaded, it carries the reference, and
/// the recipient records the attachment pending with its key sealed apart.
@Suite("Messenger: attachments")
struct MessengerAttachmentTests {
    @Test("a message with a file waits for its upload, then carries the reference; bob records it pending")
    func attachmentThroughOutboxAndInbox() throws {
        let world = try MessagingWorld()
        let (alice, bob) = (world.alice, world.bob)
        let upload = try bob.messenger.preparePrekeys(newOneTimePrekeys: 5, newOneTimeKEMPrekeys: 5, now: world.now)
        let bundle = try alice.messenger.checkBundle(
            member: bob.name, identityKey: bob.publicKey.bytes, signedPrekey: upload.signedPrekey.bytes,
            signedPrekeySignature: upload.signedPrekeySignature.bytes, envelopeKey: upload.envelopeKey.bytes,
            envelopeKeySignature: upload.envelopeKeySignature.bytes, oneTimePrekey: upload.oneTimePrekeys[0].bytes,
            kemPrekey: upload.oneTimeKEMPrekeys[0].key.bytes, kemPrekeySignature: upload.oneTimeKEMPrekeys[0].signature.bytes, kemPrekeyLastResort: false)

        let file = alice.folder.file("annex.pdf")
        try Data(repeating: 0x42, count: 10_000).write(to: URL(fileURLWithPath: file))
        let attachments = try OutgoingAttachment.prepare(files: [file], home: alice.home, maximumBlobBytes: nil)
        #expect(mode(of: alice.home.spoolPath) == 0o700)
        #expect(mode(of: attachments[0].spoolPath) == 0o600)
        #expect(attachments[0].reference.name == "annex.pdf" && attachments[0].reference.mediaType == "application/pdf")

        let composed = try alice.messenger.compose("", to: [bob.name], precedence: .routine, ttl: .week, now: world.now, attachments: attachments)
        #expect(try alice.messenger.unsealed(now: world.now).isEmpty, "a message must not be encrypted before its blob is uploaded")
        let uploads = try alice.messenger.incompleteUploads()
        try #require(uploads.count == 1)
        #expect(uploads[0].blobID == attachments[0].reference.blobID && uploads[0].size == attachments[0].size)
        #expect(uploads[0].fetches.map(\.count) == [1])

        try alice.messenger.uploadCompleted(uploads[0])
        #expect(!FileManager.default.fileExists(atPath: attachments[0].spoolPath))
        let due = try alice.messenger.unsealed(now: world.now)
        try #require(due.count == 1)
        try alice.messenger.seal(due[0].item, to: bob.name, bundle: bundle, now: world.now)
        // Once sealed, the upload record (and its key) is no longer kept.
        #expect(try alice.messenger.store.read("uploads") { try $0.upload(attachments[0].reference.blobID) } == nil)
        let item = try #require(try alice.messenger.readyToSend(now: world.now).first?.item)
        #expect(item.id == composed[0].id)

        let delivered = Messenger.Delivered(
            id: item.id, precedence: item.precedence, ttlClass: item.ttl, requestedTTLClass: item.ttl, envelope: try #require(item.envelope))
        guard case .message(let received) = try bob.messenger.receive(delivered, now: world.now) else {
            Issue.record("bob did not store the message")
            return
        }
        #expect(received.attachmentCount == 1)
        let stored = try bob.messenger.attachments(of: item.id)
        #expect(stored.map(\.state) == [.pending])
        #expect(stored.first?.reference == attachments[0].reference)
        let views = try bob.messenger.attachmentViews(of: item.id)
        #expect(views.map(\.name) == ["annex.pdf"] && views.map(\.size) == [10_000] && views.map(\.state) == ["pending"])
        #expect(views.first?.hash == Hex.encode(BLAKE2b.hash([UInt8](repeating: 0x42, count: 10_000), outputByteCount: 32)))
        // The key is never in the inbox record, which is what gets printed.
        let record = try bob.messenger.store.read("inbox") { try $0.inbox() }.first?.data ?? []
        let key = attachments[0].reference.key.rawRepresentation.withUnsafeBytes { Array($0) }
        #expect(record.firstRange(of: key) == nil && record.firstRange(of: Array(Hex.encode(key).utf8)) == nil)

        try bob.messenger.setAttachmentState(messageID: item.id, position: 0, .stored)
        #expect(try bob.messenger.attachmentViews(of: item.id).map(\.state) == ["stored"])
    }

    @Test("too many files, a folder, or a file over the relay's limit are refused before anything is written")
    func refusedBeforeWriting() throws {
        let world = try MessagingWorld()
        let alice = world.alice
        let file = alice.folder.file("big.bin")
        try Data(repeating: 1, count: 200_000).write(to: URL(fileURLWithPath: file))
        #expect(throws: ClientError.self) { _ = try OutgoingAttachment.prepare(files: [file], home: alice.home, maximumBlobBytes: 100_000) }
        #expect(throws: ClientError.self) { _ = try OutgoingAttachment.prepare(files: [alice.folder.path], home: alice.home, maximumBlobBytes: nil) }
        #expect(throws: ClientError.self) { _ = try OutgoingAttachment.prepare(files: Array(repeating: file, count: 33), home: alice.home, maximumBlobBytes: nil) }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: alice.home.spoolPath)) ?? [] == [])
    }
}
