import Foundation
import Testing
import ValiseTestSupport
@testable import ValiseClient
import ValiseCrypto
import ValiseSession
import ValiseStore

/// Attachments sealed into blobs and read back: every damage the format lists is refused.
@Suite("Attachment format")
struct AttachmentFormatTests {
    let directory = TemporaryDirectory()

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = directory.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    func reference(_ sealed: SealedBlob, name: String = "annex.pdf", length: UInt64? = nil, hash: [UInt8]? = nil, blobID: [UInt8]? = nil) -> AttachmentReference {
        AttachmentReference(
            blobID: blobID ?? sealed.blobID, key: sealed.key, length: length ?? sealed.length, hash: hash ?? sealed.hash, name: name,
            mediaType: "application/pdf")
    }

    /// Opens `blob` (bytes) against `reference`, returning the plaintext written.
    func open(_ blob: [UInt8], _ reference: AttachmentReference) throws -> [UInt8] {
        let path = try write("check-\(UUID().uuidString).blob", blob)
        let out = directory.file("out-\(UUID().uuidString)")
        let output = try StreamFile.createExclusive(out)
        try AttachmentOpener.open(blobAt: path, reference: reference, output: output)
        return try bytes(out)
    }

    @Test("round trip at the sizes around chunk and padding boundaries", arguments: [0, 1, 4_095, 4_096, 65_535, 65_536, 65_537, 200_001])
    func roundTrip(length: Int) throws {
        let file = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let sealed = try AttachmentSealer.seal(file: try write("in-\(length)", file), into: directory.path)
        #expect(sealed.length == UInt64(length))
        #expect(sealed.hash == BLAKE2b.hash(file, outputByteCount: 32))
        let blob = try bytes(sealed.path)
        #expect(UInt64(blob.count) == BlobFormat.blobSize(fileLength: UInt64(length)))
        #expect(sealed.size == UInt64(blob.count))
        #expect(sealed.blobID == BLAKE2b.hash(blob, outputByteCount: 32))
        #expect(sealed.path == directory.file(Hex.encode(sealed.blobID) + ".blob"))
        #expect(mode(of: sealed.path) == 0o600)
        #expect(blob[0] == 1)
        #expect(try open(blob, reference(sealed)) == file)
    }

    @Test("a damaged blob is refused: a flipped bit, cut short, extended, a chunk dropped")
    func damage() throws {
        let file = [UInt8](repeating: 0x41, count: 150_000)
        let sealed = try AttachmentSealer.seal(file: try write("in", file), into: directory.path)
        let blob = try bytes(sealed.path)
        let good = reference(sealed)
        var flipped = blob
        flipped[100_000] ^= 0x10
        var version = blob
        version[0] = 2
        let damaged: [[UInt8]] = [
            flipped, version, Array(blob.dropLast()), Array(blob.dropLast(17 + 65_536)), blob + [0], blob + blob.suffix(100),
            Array(blob[0..<25]) + Array(blob[(25 + 65_553)...]),
        ]
        for bad in damaged {
            #expect(throws: ClientError.self) { _ = try open(bad, good) }
        }
        // The reference is the other half: a wrong length, hash, id or key is refused too.
        #expect(throws: ClientError.self) { _ = try open(blob, reference(sealed, length: sealed.length - 1)) }
        #expect(throws: ClientError.self) { _ = try open(blob, reference(sealed, length: sealed.length + 1)) }
        #expect(throws: ClientError.self) { _ = try open(blob, reference(sealed, hash: [UInt8](repeating: 0, count: 32))) }
        #expect(throws: ClientError.self) { _ = try open(blob, reference(sealed, blobID: [UInt8](repeating: 0, count: 32))) }
        let otherKey = AttachmentReference(blobID: sealed.blobID, key: SecretStream.makeKey(), length: sealed.length, hash: sealed.hash, name: "a", mediaType: "")
        #expect(throws: ClientError.self) { _ = try open(blob, otherKey) }
        #expect(try open(blob, good) == file)
    }

    @Test("padding other than 0x80 then zeros, or FINAL misplaced, is refused")
    func wrongPaddingAndTags() throws {
        // Hand-made blobs with a valid stream but a wrong plaintext layout.
        func blob(_ plaintexts: [[UInt8]], tags: [SecretStream.Tag], key: SymmetricKey) -> [UInt8] {
            var pusher = SecretStream.Pusher(key: key)
            var out = [BlobFormat.version] + pusher.header
            for (plaintext, tag) in zip(plaintexts, tags) { out += pusher.push(plaintext, tag: tag) }
            return out
        }
        let key = SecretStream.makeKey()
        let file = Array("hello".utf8)
        func check(_ padded: [[UInt8]], _ tags: [SecretStream.Tag]) -> Bool {
            let bytes = blob(padded, tags: tags, key: key)
            let ref = AttachmentReference(
                blobID: BLAKE2b.hash(bytes, outputByteCount: 32), key: key, length: 5, hash: BLAKE2b.hash(file, outputByteCount: 32), name: "a", mediaType: "")
            return (try? open(bytes, ref)) == file
        }
        let right = file + [0x80] + [UInt8](repeating: 0, count: 4_090)
        #expect(check([right], [.final]))
        #expect(!check([right], [.message]))
        #expect(!check([file + [0x00] + [UInt8](repeating: 0, count: 4_090)], [.final]))
        #expect(!check([file + [0x80] + [UInt8](repeating: 0, count: 4_089) + [1]], [.final]))
        #expect(!check([file + [0x80, 0x80] + [UInt8](repeating: 0, count: 4_089)], [.final]))
    }

    @Test("a directory, a missing file and a file that cannot be read are refused")
    func refusedInputs() throws {
        #expect(throws: ClientError.self) { _ = try AttachmentSealer.seal(file: directory.path, into: directory.path) }
        #expect(throws: ClientError.self) { _ = try AttachmentSealer.seal(file: directory.file("missing"), into: directory.path) }
        // Nothing is left in the spool by a refusal.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".partial") }.isEmpty)
    }

    @Test("media types from the extension")
    func mediaTypes() {
        #expect(AttachmentSealer.mediaType(forName: "note.PDF") == "application/pdf")
        #expect(AttachmentSealer.mediaType(forName: "a.tar.jpeg") == "image/jpeg")
        #expect(AttachmentSealer.mediaType(forName: "README") == "application/octet-stream")
        #expect(AttachmentSealer.mediaType(forName: "x.exe") == "application/octet-stream")
    }
}
