import Testing
@testable import ValiseCrypto

/// libsodium's secretstream as `SecretStream` wraps it: a recorded run of an independent
/// build (PyNaCl, Fixtures/SOURCES.md), then every way a stream can be damaged.
@Suite("SecretStream")
struct SecretStreamTests {
    @Test("decrypts a stream written by PyNaCl")
    func pyNaClFixture() throws {
        let fixture = try #require(Fixture.object("secretstream_pynacl"))
        let keyHex = try #require(fixture["key"])
        let headerHex = try #require(fixture["header"])
        let key = try SymmetricKey(SecretBytes(copying: try #require(hexDecode(keyHex))))
        let header = try #require(hexDecode(headerHex))
        var puller = try SecretStream.Puller(key: key, header: header)
        let vectors = Fixture.vectors("secretstream_pynacl")
        #expect(vectors.count == 4)
        for vector in vectors {
            let (plaintext, tag) = try puller.pull(vector.hex("ciphertext"))
            #expect(plaintext == vector.hex("plaintext"))
            #expect(tag.rawValue == UInt8(vector.int("tag")))
        }
        let finished = puller.isFinished
        #expect(finished)
    }

    /// Pushes `chunks`, the last tagged final; returns the header and the sealed chunks.
    private func seal(_ chunks: [[UInt8]], key: SymmetricKey) -> (header: [UInt8], sealed: [[UInt8]]) {
        var pusher = SecretStream.Pusher(key: key)
        let sealed = chunks.enumerated().map { index, chunk in
            pusher.push(chunk, tag: index == chunks.count - 1 ? .final : .message)
        }
        return (pusher.header, sealed)
    }

    private let chunks: [[UInt8]] = [Array("first".utf8), [], Array(repeating: 0xA5, count: 65_536), Array("last".utf8)]

    @Test("round trip, with the sizes the format says")
    func roundTrip() throws {
        let key = SecretStream.makeKey()
        let (header, sealed) = seal(chunks, key: key)
        #expect(header.count == 24)
        #expect(zip(sealed, chunks).allSatisfy { $0.count == $1.count + 17 })
        var puller = try SecretStream.Puller(key: key, header: header)
        for (index, chunk) in sealed.enumerated() {
            let (plaintext, tag) = try puller.pull(chunk)
            #expect(plaintext == chunks[index])
            #expect(tag == (index == chunks.count - 1 ? .final : .message))
        }
        let finished = puller.isFinished
        #expect(finished)
    }

    @Test("a flipped bit in any chunk or the header fails")
    func tamper() throws {
        let key = SecretStream.makeKey()
        let (header, sealed) = seal(chunks, key: key)
        for index in sealed.indices {
            var damaged = sealed
            damaged[index][damaged[index].count / 2] ^= 0x01
            var puller = try SecretStream.Puller(key: key, header: header)
            #expect(throws: CryptoError.self) {
                for chunk in damaged { _ = try puller.pull(chunk) }
            }
        }
        var badHeader = header
        badHeader[0] ^= 0x80
        var puller = try SecretStream.Puller(key: key, header: badHeader)
        #expect(throws: CryptoError.self) { _ = try puller.pull(sealed[0]) }
    }

    @Test("a truncated stream never reports its end")
    func truncation() throws {
        let key = SecretStream.makeKey()
        let (header, sealed) = seal(chunks, key: key)
        var puller = try SecretStream.Puller(key: key, header: header)
        for chunk in sealed.dropLast() {
            let tag = try puller.pull(chunk).tag
            #expect(tag == .message)
        }
        let finished = puller.isFinished
        #expect(!finished)
        // A chunk cut short fails rather than decrypting to fewer bytes.
        var cut = try SecretStream.Puller(key: key, header: header)
        #expect(throws: CryptoError.self) { _ = try cut.pull(Array(sealed[0].dropLast())) }
        #expect(throws: CryptoError.self) { _ = try cut.pull(Array(sealed[0].prefix(16))) }
    }

    @Test("reordered or replayed chunks fail")
    func reordering() throws {
        let key = SecretStream.makeKey()
        let (header, sealed) = seal(chunks, key: key)
        var swapped = try SecretStream.Puller(key: key, header: header)
        #expect(throws: CryptoError.self) { _ = try swapped.pull(sealed[1]) }
        var replayed = try SecretStream.Puller(key: key, header: header)
        _ = try replayed.pull(sealed[0])
        #expect(throws: CryptoError.self) { _ = try replayed.pull(sealed[0]) }
    }

    @Test("the wrong key fails")
    func wrongKey() throws {
        let (header, sealed) = seal(chunks, key: SecretStream.makeKey())
        var puller = try SecretStream.Puller(key: SecretStream.makeKey(), header: header)
        #expect(throws: CryptoError.self) { _ = try puller.pull(sealed[0]) }
        #expect(throws: CryptoError.self) { _ = try SecretStream.Puller(key: SecretStream.makeKey(), header: Array(header.prefix(23))) }
    }

    @Test("nothing may follow the final chunk")
    func bytesAfterFinal() throws {
        let key = SecretStream.makeKey()
        var pusher = SecretStream.Pusher(key: key)
        let first = pusher.push(Array("end".utf8), tag: .final)
        let extra = pusher.push(Array("more".utf8), tag: .message)
        var puller = try SecretStream.Puller(key: key, header: pusher.header)
        let tag = try puller.pull(first).tag
        #expect(tag == .final)
        #expect(throws: CryptoError.self) { _ = try puller.pull(extra) }
    }
}
