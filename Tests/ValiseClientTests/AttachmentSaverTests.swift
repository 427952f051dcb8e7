import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseClient
import ValiseCrypto
import ValiseSession

/// `valise save`'s names and its never-overwrite, verify-first publishing.
@Suite("Attachment saver")
struct AttachmentSaverTests {
    let directory = TemporaryDirectory()

    @Test("hostile names are made safe", arguments: [
        ("../../etc/passwd", "etcpasswd"),
        (".bashrc", "bashrc"),
        ("..", "attachment"),
        ("/", "attachment"),
        ("///", "attachment"),
        ("a\\b\\c.txt", "abc.txt"),
        ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
        ("x\u{2066}y\u{2069}\u{200E}\u{200F}\u{061C}z", "xyz"),
        ("tab\there\nnew\u{7F}del\u{85}c1\u{0}nul", "tabherenewdelc1nul"),
        ("", "attachment"),
        ("note verbale.pdf", "note verbale.pdf"),
    ])
    func hostileNames(_ input: String, _ expected: String) {
        #expect(AttachmentSaver.sanitisedName(input) == expected)
    }

    @Test("NFD input comes out NFC")
    func normalisation() {
        let decomposed = "Re\u{0301}sume\u{0301}.pdf"
        let saved = AttachmentSaver.sanitisedName(decomposed)
        #expect(saved == "R\u{00E9}sum\u{00E9}.pdf")
        #expect(Array(saved.unicodeScalars).count == 10)
    }

    @Test("long names are cut to 255 bytes at a character, keeping the extension")
    func longNames() {
        let ascii = AttachmentSaver.sanitisedName(String(repeating: "a", count: 300) + ".pdf")
        #expect(ascii.utf8.count == 255)
        #expect(ascii.hasSuffix(".pdf"))
        let wide = AttachmentSaver.sanitisedName(String(repeating: "é", count: 150) + ".docx")
        #expect(wide.utf8.count <= 255)
        #expect(wide.hasSuffix(".docx"))
        #expect(String(validating: Array(wide.utf8), as: UTF8.self) != nil)
        let noExtension = AttachmentSaver.sanitisedName(String(repeating: "€", count: 120))
        #expect(noExtension.utf8.count <= 255 && noExtension.utf8.count > 250)
    }

    private func sealed(_ bytes: [UInt8], name: String) throws -> (path: String, reference: AttachmentReference) {
        let input = directory.file("input")
        try? FileManager.default.removeItem(atPath: input)
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let blob = try AttachmentSealer.seal(file: input, into: directory.path)
        return (blob.path, AttachmentReference(blobID: blob.blobID, key: blob.key, length: blob.length, hash: blob.hash, name: name, mediaType: ""))
    }

    private func visible(_ folder: String) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: folder).sorted() }

    @Test("saves under the clean name, 0600; never over an existing file; no temporary file left")
    func saveOnce() throws {
        let out = directory.file("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        let content = [UInt8]("The annex".utf8)
        let (path, reference) = try sealed(content, name: "../annex.txt")
        let written = try AttachmentSaver.save(blobAt: path, reference: reference, into: out)
        #expect(written == out + "/annex.txt")
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: written))) == content)
        #expect(mode(of: written) == 0o600)
        let error = #expect(throws: ClientError.self) { _ = try AttachmentSaver.save(blobAt: path, reference: reference, into: out) }
        #expect(error?.message.contains("exists; nothing was written") == true)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: written))) == content)
        #expect(try visible(out) == ["annex.txt"])
    }

    @Test("a tampered blob is refused and nothing appears")
    func tamperedNotWritten() throws {
        let out = directory.file("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        let (path, reference) = try sealed([UInt8](repeating: 7, count: 70_000), name: "a.bin")
        var blob = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        blob[70_000] ^= 1
        try Data(blob).write(to: URL(fileURLWithPath: path))
        #expect(throws: ClientError.self) { _ = try AttachmentSaver.save(blobAt: path, reference: reference, into: out) }
        #expect(try visible(out).isEmpty)
    }
}
