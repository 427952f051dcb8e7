import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseClient
import ValiseCrypto
import ValiseSession

/// docs/PROTOCOL.md ("Attachments", "Message contents") against an independent reading of
/// it: scripts/interop/attachment.py sealed these blobs with PyNaCl and encoded these
/// contents by hand (Fixtures/SOURCE.md). Valise must open every blob, refuse every invalid
/// one, and agree on every Padmé size and every byte of the contents.
@Suite("Attachments: the independent implementation's vectors")
struct AttachmentInteropTests {
    struct Vectors: Decodable {
        struct Padding: Decodable { let length: UInt64; let padded: UInt64; let blobSize: UInt64 }
        struct Blob: Decodable { let length: UInt64; let key: String; let hash: String; let blobId: String; let blob: String; let reason: String? }
        struct Attachment: Decodable { let blobId: String; let key: String; let length: UInt64; let hash: String; let name: String; let mediaType: String }
        struct Contents: Decodable { let text: String; let selector: String; let attachments: [Attachment]; let encoded: String }
        let padding: [Padding]
        let blobs: [Blob]
        let invalid: [Blob]
        let contents: [Contents]
    }

    static let vectors: Vectors = {
        let url = Bundle.module.url(forResource: "attachment-vectors", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
    }()

    let directory = TemporaryDirectory()

    func reference(_ blob: Vectors.Blob) throws -> AttachmentReference {
        AttachmentReference(
            blobID: Hex.decode(blob.blobId)!, key: try SymmetricKey(SecretBytes(copying: Hex.decode(blob.key)!)), length: blob.length,
            hash: Hex.decode(blob.hash)!, name: "vector", mediaType: "")
    }

    func open(_ blob: Vectors.Blob) throws -> [UInt8] {
        let path = directory.file("\(UUID().uuidString).blob")
        try Data(Hex.decode(blob.blob)!).write(to: URL(fileURLWithPath: path))
        let out = directory.file("\(UUID().uuidString).out")
        try AttachmentOpener.open(blobAt: path, reference: try reference(blob), output: try StreamFile.createExclusive(out))
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    @Test("Padmé and blob sizes agree, up to 1 GiB")
    func sizes() {
        for row in Self.vectors.padding {
            #expect(BlobFormat.paddedLength(fileLength: row.length) == row.padded, "length \(row.length)")
            #expect(BlobFormat.blobSize(fileLength: row.length) == row.blobSize, "length \(row.length)")
        }
    }

    @Test("every blob sealed by the independent implementation opens to a file with its length and hash")
    func blobsOpen() throws {
        for blob in Self.vectors.blobs {
            let file = try open(blob)
            #expect(UInt64(file.count) == blob.length)
            #expect(BLAKE2b.hash(file, outputByteCount: 32) == Hex.decode(blob.hash)!)
        }
    }

    @Test("every invalid blob is refused, whatever its fault")
    func invalidRefused() throws {
        #expect(Self.vectors.invalid.count >= 9)
        for blob in Self.vectors.invalid {
            #expect(throws: ClientError.self, "\(blob.reason ?? "?")") { _ = try open(blob) }
        }
    }

    @Test("kind-3 contents: the same bytes both ways")
    func contents() throws {
        for vector in Self.vectors.contents {
            let attachments = try vector.attachments.map { a in
                AttachmentReference(
                    blobID: Hex.decode(a.blobId)!, key: try SymmetricKey(SecretBytes(copying: Hex.decode(a.key)!)), length: a.length,
                    hash: Hex.decode(a.hash)!, name: a.name, mediaType: a.mediaType)
            }
            let content = MessageContent.message(.init(text: vector.text, circular: vector.selector.isEmpty ? nil : vector.selector, attachments: attachments))
            #expect(Hex.encode(content.encoded) == vector.encoded)
            #expect(try MessageContent(decoding: Hex.decode(vector.encoded)!) == content)
        }
    }
}
